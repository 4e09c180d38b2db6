"""The service layer: what relledger does with a store, said once for every face.

The CLI (`relledger/`) and the HTTP API both call this and nothing below it: open a
migrated store, record interactions and bring the read models up to date, answer
from the read models (noting lag and quarantine), replay and verify from the events,
rebuild. The faces only parse their input and render these answers, whose JSON
shapes (`projections/views.py`) are therefore the same over both. Errors are the
families of `domain.errors`, which each face maps once (exit codes, HTTP statuses).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from consumers.jsonl import (
    IngestReport,
    LineRejection,
    OversizedLine,
    ingest_lines,
    jsonl_layout,
)
from domain.contract import DEFAULT_LIMITS, IntakeLimits, Interaction
from domain.errors import NotFound
from domain.ledger import Outcome, RelationshipLedger, UnknownRelationship
from domain.policy import Policy
from projections import queries
from projections.audit import ChainBroken, VerifyReport, verify_ledger, verify_relationship
from projections.projector import CatchUp, Projector
from projections.rebuild import RebuildReport, rebuild
from projections.replay import Replay, replay_relationship
from projections.tracking import check_tracking
from projections.view import RelationshipView, open_view
from projections.views import (
    phase_change_view,
    replay_view,
    stored_interaction_view,
    trust_change_view,
)
from service.checkpoints import Checkpoints, LedgerCheck
from service.keys import KeyRing
from service.policies import KnownPolicies, load_policy
from service.replay_bounds import check_replay_bounds
from service.schema import require_migrated
from service.store import open_ledger, parse_store_url

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Notes:
    """What a reader should know about an answer from the read models."""

    lag: int
    quarantined: int
    problem: str | None = None
    """Why the read models cannot go on from their tracking record, if they cannot."""

    def lines(self) -> list[str]:
        said = [] if self.problem is None else [self.problem]
        if self.lag:
            said.append(
                f"the read models are {self.lag} events behind the log (run relledger project)"
            )
        if self.quarantined:
            said.append(
                f"{self.quarantined} relationship(s) quarantined, their figures stopped before "
                "an event that failed (see relledger projections status)"
            )
        return said


class LedgerService:
    """One opened, migrated store: the ledger, its read models and their projector."""

    def __init__(self, ledger: RelationshipLedger) -> None:
        self.ledger = ledger
        self.view: RelationshipView = open_view(ledger)
        self.known_policies = KnownPolicies(ledger)
        self._projector: Projector | None = None

    @classmethod
    def open(cls, url: str) -> LedgerService:
        """Open the store at `url`; refuse one `relledger migrate` did not prepare
        (creating nothing in it)."""
        ledger = open_ledger(url)
        try:
            require_migrated(ledger, parse_store_url(url))
        except BaseException:
            ledger.close()
            raise
        return cls(ledger)

    def close(self) -> None:
        self.ledger.close()

    @property
    def keys(self) -> KeyRing:
        """The API keys kept in this store."""
        return KeyRing(self.ledger)

    # -- recording --------------------------------------------------------------------

    def record(self, items: Sequence[Interaction]) -> list[Outcome]:
        """Record one batch in one transaction (outcomes in order; see `record_batch`)."""
        return self.ledger.record_batch(items)

    def ingest(
        self,
        lines: Iterable[bytes | OversizedLine],
        *,
        batch_size: int,
        limits: IntakeLimits = DEFAULT_LIMITS,
        record: Callable[[Sequence[Interaction]], list[Outcome]] | None = None,
        on_rejection: Callable[[LineRejection], None] | None = None,
        on_progress: Callable[[int], None] | None = None,
        stop: threading.Event | None = None,
    ) -> IngestReport:
        """Record every valid line of a JSONL stream (the read models are not touched:
        call `catch_up` after). `NotJsonLines` if the stream is a JSON array or
        pretty-printed JSON (nothing recorded); `stop` ends it at a batch boundary."""
        return ingest_lines(
            self.ledger,
            jsonl_layout(lines),
            batch_size=batch_size,
            limits=limits,
            record=record or self.record,
            on_rejection=on_rejection,
            on_progress=on_progress,
            stop=stop,
        )

    # -- the read models ----------------------------------------------------------------

    @property
    def projector(self) -> Projector:
        if self._projector is None:
            self._projector = Projector(self.ledger, self.view)
        return self._projector

    def catch_up(
        self, stop: threading.Event | None = None, on_progress: Progress | None = None
    ) -> CatchUp:
        """Bring the read models up to the log's head (`TrackingDamaged` if their tracking
        record contradicts their rows or the log: projecting would then fold events twice,
        or skip them)."""
        live = self.view.ensure_live(load_policy())
        check_tracking(self.view, self.ledger, self.view.generation(live.generation))
        return self.projector.catch_up(on_progress=on_progress, stop=stop)

    def follow(
        self,
        stop: threading.Event,
        interval: float,
        on_caught_up: Callable[[CatchUp], None] | None = None,
    ) -> None:
        """Keep the read models current until `stop` is set (outages are waited out); their
        tracking record is checked first, as `catch_up` does."""
        live = self.view.require_live()
        check_tracking(self.view, self.ledger, self.view.generation(live.generation))
        self.projector.follow(stop, interval, on_caught_up=on_caught_up)

    def notes(self) -> Notes:
        found = queries.status(self.view, self.ledger, limit=0)
        return Notes(found.lag, found.quarantined, found.problem)

    def status(self, limit: int = 100) -> queries.Status:
        return queries.status(self.view, self.ledger, limit=limit)

    def rebuild(
        self,
        policy_file: Path | None,
        *,
        check: bool,
        from_zero: bool = False,
        on_progress: Progress | None = None,
    ) -> RebuildReport:
        """Fresh read models from the whole log, compared with the live ones and (unless
        `check`) swapped in; `policy_file` applies another policy. `from_zero` swaps them
        in without comparing, whatever the live ones' tracking record says."""
        chosen = None if policy_file is None else self._policy_file(policy_file)
        report = rebuild(
            self.ledger,
            self.view,
            chosen,
            check=check,
            from_zero=from_zero,
            on_progress=on_progress,
        )
        if chosen is not None and not check:
            self.known_policies.remember(chosen)
        return report

    # -- questions answered from the read models -------------------------------------------

    def standing(self, relationship_id: str) -> dict[str, Any]:
        """Where it stands (the `show --json` shape), quarantine included; NotFound if
        the read models do not know it."""
        found = queries.standing(self.view, relationship_id)
        if found is None:
            raise UnknownRelationship(relationship_id)
        return found

    def trust_history(self, relationship_id: str) -> list[dict[str, Any]]:
        self.standing(relationship_id)
        return queries.trust_history(self.view, relationship_id)

    def phase_history(self, relationship_id: str) -> list[dict[str, Any]]:
        self.standing(relationship_id)
        return queries.phase_history(self.view, relationship_id)

    def relationships(
        self,
        filters: queries.Filters,
        *,
        sort: queries.SortKey,
        descending: bool,
        limit: int,
        offset: int,
    ) -> queries.Listing:
        return queries.list_relationships(
            self.view, filters, sort=sort, descending=descending, limit=limit, offset=offset
        )

    def at_risk(
        self, since: datetime | None, until: datetime | None, limit: int
    ) -> list[dict[str, Any]]:
        return queries.trust_drops(self.view, since, until, limit=limit)

    def changes_after(self, position: int, limit: int = 500) -> list[tuple[int, dict[str, Any]]]:
        """Standings changed after log `position`, oldest first: the change feed."""
        return queries.changes_after(self.view, position, limit=limit)

    def stats(self, outliers: int) -> dict[str, Any]:
        return {
            "distribution": queries.distribution(self.view),
            "fairness_outliers": queries.fairness_outliers(self.view, limit=outliers),
        }

    # -- the audit, from the events alone ---------------------------------------------------

    def replay(
        self,
        relationship_id: str,
        *,
        as_of: datetime | None = None,
        version: int | None = None,
        policy_file: Path | None = None,
        policy_name: str | None = None,
        verify: bool = True,
    ) -> dict[str, Any]:
        """The relationship recomputed from its stored events (the `show --json` shape and
        `verified`), under a policy file, a policy the store knows by name, or else the
        live one.

        The events replayed (its first `version`, or all) are verified first: a break
        raises `ChainBroken` naming it. `verify=False` folds them anyway, and the answer
        says `"verified": false`. A question with no true answer is refused rather than
        answered with an empty standing: `as_of` before its first interaction (`NotYet`),
        `version` beyond its last record (`BeyondLastRecord`)."""
        if as_of is not None or version is not None:
            check_replay_bounds(self.ledger.history(relationship_id), as_of, version)
        found = self._replayed(
            relationship_id, as_of, version, policy_file, policy_name, verify=verify
        )
        return replay_view(relationship_id, found.standing, verified=verify)

    def replay_histories(
        self, relationship_id: str, *, as_of: datetime | None = None, policy_name: str | None = None
    ) -> dict[str, Any]:
        """A verified replay with the histories behind it: `standing` (as `replay`),
        `trust_changes` and `phase_changes` (the shapes of `trust-history` and
        `phase-history`), as they would read had the store been folded that way."""
        found = self._replayed(relationship_id, as_of, None, None, policy_name, verify=True)
        return {
            "standing": replay_view(relationship_id, found.standing, verified=True),
            "trust_changes": [trust_change_view(c) for c in found.scorer.trust_changes],
            "phase_changes": [phase_change_view(c) for c in found.scorer.phase_changes],
        }

    def _replayed(
        self,
        relationship_id: str,
        as_of: datetime | None,
        version: int | None,
        policy_file: Path | None,
        policy_name: str | None,
        *,
        verify: bool,
    ) -> Replay:
        policy = (
            self._policy_file(policy_file) if policy_file is not None else self.policy(policy_name)
        )
        if verify:
            checked = verify_relationship(
                self.ledger, relationship_id, upto=version, view=self.view
            )
            if checked.records == 0:
                raise UnknownRelationship(relationship_id)
            if not checked.intact:
                raise ChainBroken(relationship_id, checked.breaks)
        return replay_relationship(self.ledger, relationship_id, policy, as_of=as_of, upto=version)

    def events(self, relationship_id: str, *, offset: int, limit: int) -> dict[str, Any]:
        """A page of its stored interactions in chain order (`items`, `total`, `next`:
        the offset of the next page, or None)."""
        stored = self.ledger.history(relationship_id)
        page = stored[offset : offset + limit]
        after = offset + len(page)
        return {
            "items": [stored_interaction_view(one) for one in page],
            "total": len(stored),
            "next": after if after < len(stored) else None,
        }

    def policies(self) -> list[dict[str, Any]]:
        """The policies this store knows, oldest first: every one its read models were
        built under (every figure names its version), the live one marked."""
        live = self.policy(None)
        known = [policy for policy in self.known_policies.all() if policy.version != live.version]
        return [
            {
                "version": policy.version,
                "live": policy is live,
                "rules": policy.model_dump(mode="json"),
            }
            for policy in [*known, live]
        ]

    def policy(self, name: str | None = None) -> Policy:
        """The live policy, or the known one named `name` (NotFound otherwise)."""
        live = self.view.require_live().policy()
        if name is None or name == live.version:
            return live
        known = self.known_policies.get(name)
        if known is None:
            raise NotFound(f"no policy {name!r} in this store (the live one is {live.version!r})")
        return known

    def policy_from_file(self, path: Path) -> Policy:
        """A policy file, refused (`PolicyConflict`) if it reuses a version name this
        store knows with other rules: one name, one set of rules, wherever it is offered."""
        return self._policy_file(path)

    def _policy_file(self, path: Path) -> Policy:
        """A policy file, refused if it reuses a known version name with other rules."""
        policy = load_policy(path)
        self.known_policies.check(policy)
        return policy

    def verify(self, relationship_id: str | None = None) -> VerifyReport:
        """Every stored event checked: its hash chain, its topic, the relationship it names
        and its place in the log (or one relationship's: NotFound if unknown).
        `LedgerMissing` if the store has no events table."""
        report = verify_ledger(self.ledger, relationship_id, view=self.view)
        if relationship_id is not None and report.relationships == 0:
            raise UnknownRelationship(relationship_id)
        return report

    def verify_ledger(self) -> LedgerCheck:
        """Every stored event checked (as `verify`), and the whole ledger compared with the
        latest checkpoint kept in the store: what `relledger verify` and `GET /v1/verify`
        answer."""
        chains = self.verify()
        return LedgerCheck(chains, self.checkpoints.against_latest())

    @property
    def checkpoints(self) -> Checkpoints:
        """The signed checkpoints kept in this store."""
        return Checkpoints(self.ledger)
