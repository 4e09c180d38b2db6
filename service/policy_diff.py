"""`relledger policy show` and `policy diff FILE`: what a policy change would do, before
anyone applies it.

A diff has two halves. The rules side by side, flattened to dotted names
(`trust.gain_rate`), each `changed`, `added` or `removed` (only the tables of
evidence, `trust.strengths` and `trust.severities`, can gain or lose keys). Then the
figures: every relationship the read models know is replayed from its stored events
under the live policy and under the file, with the audit replay's own fold
(`projections.replay`), one relationship at a time (memory holds one history, whatever
the ledger's size), and those whose trust, phase, stage, fairness or credibility cap
would differ are counted; the `limit` with the largest trust change are listed. A
relationship whose events cannot be folded (quarantined) is counted apart, not fatal.

A file that reuses a version name the store knows with other rules is refused, as it
is everywhere a policy file is offered (`LedgerService.policy_from_file`).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from domain.errors import Damaged
from domain.policy import Policy
from projections.replay import replay_relationship
from projections.views import standing_view
from service.ledger_service import LedgerService

COMPARED = ("trust", "credibility_lost", "phase", "stage", "fairness_index", "fairness_status")
"""The figures a policy decides (connection, counts and money totals it does not)."""
PAGE = 500


def flat_rules(policy: Policy) -> dict[str, Any]:
    """Every rule of `policy` by its dotted name, version excluded, in file order."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else key, inner)
        else:
            flat[prefix] = value

    rules = policy.model_dump(mode="json")
    rules.pop("version")
    walk("", rules)
    return flat


def policy_view(policy: Policy, *, live: bool) -> dict[str, Any]:
    """The JSON of `policy show --json`."""
    return {"version": policy.version, "live": live, "rules": flat_rules(policy)}


def rule_changes(live: Policy, other: Policy) -> list[dict[str, Any]]:
    """The rules that differ: `rule`, `live`, `file` (None where absent) and `change`."""
    before, after = flat_rules(live), flat_rules(other)
    changes = []
    for name in [*before, *(name for name in after if name not in before)]:
        if name not in after:
            change = "removed"
        elif name not in before:
            change = "added"
        elif before[name] != after[name]:
            change = "changed"
        else:
            continue
        changes.append(
            {"rule": name, "live": before.get(name), "file": after.get(name), "change": change}
        )
    return changes


def _figures(view: dict[str, Any]) -> dict[str, Any]:
    return {
        "trust": view["trust"],
        "credibility_lost": view["credibility_lost"],
        "phase": view["phase"],
        "stage": view["stage"],
        "fairness_index": view["fairness"]["index"],
        "fairness_status": view["fairness"]["status"],
    }


@dataclass
class PolicyDiff:
    live: Policy
    other: Policy
    rules: list[dict[str, Any]]
    compared: int = 0
    changed: int = 0
    unfoldable: int = 0
    listed: list[dict[str, Any]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        """The JSON of `policy diff --json`."""
        return {
            "live": self.live.version,
            "file": self.other.version,
            "rules": self.rules,
            "relationships": {
                "compared": self.compared,
                "changed": self.changed,
                "unfoldable": self.unfoldable,
                "listed": self.listed,
            },
        }


def _relationship_ids(service: LedgerService) -> Iterator[str]:
    """Every relationship the read models know, by id, a page at a time."""
    table = service.view.dialect.name("relationship_summary")
    after = ""
    while True:
        rows = service.view.query(
            f"SELECT relationship_id FROM {table} WHERE relationship_id > ? "
            f"ORDER BY relationship_id LIMIT {PAGE}",
            [after],
        )
        for row in rows:
            yield row["relationship_id"]
        if len(rows) < PAGE:
            return
        after = rows[-1]["relationship_id"]


def diff_policies(
    service: LedgerService,
    other: Policy,
    *,
    limit: int,
    on_progress: Callable[[int], None] | None = None,
) -> PolicyDiff:
    """The live policy against `other`: rules, then every relationship's figures under
    both (the `limit` with the largest trust change listed, all of them counted)."""
    live = service.policy(None)
    found = PolicyDiff(live, other, rule_changes(live, other))
    heap: list[tuple[float, _Later, dict[str, Any]]] = []  # the `limit` largest so far
    for relationship_id in _relationship_ids(service):
        found.compared += 1
        if on_progress is not None:
            on_progress(found.compared)
        try:
            now = _replayed(service, relationship_id, live)
            then = _replayed(service, relationship_id, other)
        except Damaged:
            found.unfoldable += 1
            continue
        changes = {name: [now[name], then[name]] for name in COMPARED if now[name] != then[name]}
        if not changes:
            continue
        found.changed += 1
        item = {"relationship_id": relationship_id, "changes": changes}
        weight = abs(then["trust"] - now["trust"])
        entry = (weight, _Later(relationship_id), item)
        if len(heap) < limit:
            heapq.heappush(heap, entry)
        elif limit and entry[:2] > heap[0][:2]:
            heapq.heapreplace(heap, entry)
    found.listed = [item for _, _, item in sorted(heap, key=lambda e: e[:2], reverse=True)]
    return found


class _Later(str):
    """An id that ranks higher the earlier it sorts: of two equal trust changes, the
    listing keeps (and shows first) the relationship whose id comes first."""

    __slots__ = ()

    def __lt__(self, other: str) -> bool:
        return str.__gt__(self, other)

    def __gt__(self, other: str) -> bool:
        return str.__lt__(self, other)


def _replayed(service: LedgerService, relationship_id: str, policy: Policy) -> dict[str, Any]:
    replayed = replay_relationship(service.ledger, relationship_id, policy)
    return _figures(standing_view(relationship_id, replayed.standing))
