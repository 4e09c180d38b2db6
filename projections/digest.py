"""Per-relationship digests of a generation's rows, to compare two generations.

A digest covers everything the read models hold for one relationship: the
summary row (fold state included) and every trust and phase change row, in
order. Two generations built from the same log under the same policy must give
the same digest for every relationship; a hand-edited row changes one.
Quarantine records are compared on their own: a relationship may have one
without any other row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from projections.quarantine import Quarantined
from projections.read_models import PHASE_HISTORY, QUARANTINE, SUMMARY, TRUST_HISTORY
from projections.tables import Generation
from projections.view import RelationshipView

CHUNK = 2000


@dataclass(frozen=True)
class Difference:
    relationship_id: str
    problem: str

    def __str__(self) -> str:
        return f"{self.relationship_id}: {self.problem}"


def _digest(summary: dict[str, Any], trust: list[Any], phases: list[Any]) -> str:
    payload = [
        [summary[c] for c in SUMMARY.names],
        [[row[c] for c in TRUST_HISTORY.names] for row in trust],
        [[row[c] for c in PHASE_HISTORY.names] for row in phases],
    ]
    return hashlib.sha256(orjson.dumps(payload)).hexdigest()


def _digests_between(
    view: RelationshipView, generation: Generation, after: str | None, upto: str | None
) -> dict[str, str]:
    """Digests of the relationships with `after < id <= upto` (open ends when None)."""
    where, params = [], []
    if after is not None:
        where.append("relationship_id > ?")
        params.append(after)
    if upto is not None:
        where.append("relationship_id <= ?")
        params.append(upto)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows: dict[str, dict[str, list[Any]]] = {}
    summaries = view.query(f"SELECT * FROM {generation.table('summary')}{clause}", params)
    for kind in ("trust", "phase"):
        for row in view.query(
            f"SELECT * FROM {generation.table(kind)}{clause} ORDER BY relationship_id, position, n",
            params,
        ):
            rows.setdefault(row["relationship_id"], {}).setdefault(kind, []).append(row)
    return {
        s["relationship_id"]: _digest(
            s,
            rows.get(s["relationship_id"], {}).get("trust", []),
            rows.get(s["relationship_id"], {}).get("phase", []),
        )
        for s in summaries
    }


def _boundaries(view: RelationshipView, generation: Generation) -> Iterator[str]:
    """Every CHUNK-th relationship id of `generation`, in the database's own order."""
    last: str | None = None
    while True:
        clause, params = ("", []) if last is None else (" WHERE relationship_id > ?", [last])
        ids = view.query(
            f"SELECT relationship_id FROM {generation.table('summary')}{clause} "
            f"ORDER BY relationship_id LIMIT {CHUNK}",
            params,
        )
        if not ids:
            return
        last = ids[-1]["relationship_id"]
        yield last


def compare(view: RelationshipView, live: Generation, rebuilt: Generation) -> list[Difference]:
    """Every relationship whose rows differ between two generations, chunk by chunk."""
    differences: list[Difference] = []
    after: str | None = None
    for upto in [*_boundaries(view, rebuilt), None]:
        expected = _digests_between(view, rebuilt, after, upto)
        found = _digests_between(view, live, after, upto)
        for rid in sorted(expected.keys() | found.keys()):
            if rid not in found:
                differences.append(Difference(rid, "missing from the live read models"))
            elif rid not in expected:
                differences.append(Difference(rid, "in the live read models but not in the log"))
            elif expected[rid] != found[rid]:
                differences.append(Difference(rid, "live rows differ from a fresh fold"))
        after = upto
    return differences


def quarantine_of(view: RelationshipView, generation: Generation) -> list[Quarantined]:
    """Every relationship quarantined in `generation`, in log order."""
    rows = view.query(f"SELECT * FROM {generation.table('quarantine')} ORDER BY position")
    return [QUARANTINE.load(row) for row in rows]


def compare_quarantine(
    view: RelationshipView, live: Generation, rebuilt: Generation
) -> list[Difference]:
    """Relationships quarantined in one generation and not the other, or at another event
    or for another reason. One quarantined alike in both is no difference: it is what
    the log gives under this code and policy (`RebuildReport.quarantined` lists it)."""
    expected = {q.aggregate_id: q for q in quarantine_of(view, rebuilt)}
    found = {q.aggregate_id: q for q in quarantine_of(view, live)}
    differences = []
    for aggregate_id in expected.keys() | found.keys():
        fresh, held = expected.get(aggregate_id), found.get(aggregate_id)
        if fresh == held:
            continue
        if fresh is None:
            problem = "quarantined in the live read models, but a fresh fold gets past it"
        elif held is None:
            problem = f"quarantined by a fresh fold, not in the live read models ({fresh.reason})"
        else:
            problem = f"quarantined at another event or for another reason ({fresh.reason})"
        either = held or fresh
        assert either is not None
        differences.append(Difference(either.relationship_id, problem))
    return sorted(differences, key=str)
