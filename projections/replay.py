"""Answers recomputed from the stored events alone: the audit replay.

Every answer here folds the recorded interactions again (never the read models),
so it cannot disagree with the event store; `as_of`, `upto` and another policy give
an auditor the relationship as it stood at a moment, after N records, or under
other rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from domain.errors import Damaged
from domain.fold.records import Standing
from domain.fold.scorer import Scorer, replay
from domain.ledger import RelationshipLedger
from domain.policy import Policy
from domain.stored import UnreadableRecord
from projections.quarantine import reason


class Unfoldable(Damaged):
    """A relationship whose stored events the fold cannot take (an event an older
    contract let in); the projector has it quarantined, and the audit says why."""

    def __init__(self, relationship_id: str, error: Exception) -> None:
        super().__init__(
            f"{relationship_id!r} cannot be replayed: its stored events fail to fold "
            f"({reason(error)}); relledger projections status lists where"
        )


@dataclass(frozen=True)
class Replay:
    relationship_id: str
    scorer: Scorer
    standing: Standing


def replay_relationship(
    ledger: RelationshipLedger,
    relationship_id: str,
    policy: Policy,
    *,
    as_of: datetime | None = None,
    upto: int | None = None,
) -> Replay:
    """Fold one relationship's stored interactions (raises UnknownRelationship, or
    Unfoldable for events the fold cannot take)."""
    facts = [stored.fact() for stored in ledger.history(relationship_id, upto=upto)]
    try:
        scorer = replay(facts, policy, as_of=as_of)
        return Replay(relationship_id, scorer, scorer.standing(as_of))
    except Exception as error:
        raise Unfoldable(relationship_id, error) from error


def replay_all(ledger: RelationshipLedger, policy: Policy) -> Iterator[Replay]:
    """Every relationship, folded in one pass over the whole log."""
    scorers: dict[str, Scorer] = {}
    for stored in ledger.scan():
        if isinstance(stored, UnreadableRecord):
            raise stored.problem()
        scorer = scorers.get(stored.relationship_id)
        if scorer is None:
            scorer = scorers[stored.relationship_id] = Scorer(policy)
        scorer.apply(
            stored.fact(), partial(ledger.facts_before, stored.relationship_id, stored.version)
        )
    for relationship_id in sorted(scorers):
        scorer = scorers[relationship_id]
        yield Replay(relationship_id, scorer, scorer.standing())
