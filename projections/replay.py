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

from domain.fold.records import Standing
from domain.fold.scorer import Scorer, replay
from domain.ledger import RelationshipLedger, UnreadableRecord
from domain.policy import Policy


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
    """Fold one relationship's stored interactions (raises UnknownRelationship)."""
    facts = [stored.fact() for stored in ledger.history(relationship_id, upto=upto)]
    scorer = replay(facts, policy, as_of=as_of)
    return Replay(relationship_id, scorer, scorer.standing(as_of))


def replay_all(ledger: RelationshipLedger, policy: Policy) -> Iterator[Replay]:
    """Every relationship, folded in one pass over the whole log."""
    scorers: dict[str, Scorer] = {}
    for stored in ledger.scan():
        if isinstance(stored, UnreadableRecord):
            raise stored.problem()
        scorer = scorers.get(stored.relationship_id)
        if scorer is None:
            scorer = scorers[stored.relationship_id] = Scorer(policy)
        scorer.apply(stored.fact())
    for relationship_id in sorted(scorers):
        scorer = scorers[relationship_id]
        yield Replay(relationship_id, scorer, scorer.standing())
