"""What the folds read: a recorded interaction, reduced to the fields that score it.

Stored interactions are canonical JSON dicts; turning them into `Fact`s is the
only parsing a replay does, so it is kept small and fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.contract import Actor, Interaction
from domain.kinds import KINDS, Kind, KindRule, Outcome

# Plain dict look-ups: calling an Enum by value is slow on a 10,000-event replay.
_KINDS = {kind.value: kind for kind in Kind}
_ACTORS = {actor.value: actor for actor in Actor}
_OUTCOMES = {outcome.value: outcome for outcome in Outcome}


@dataclass(frozen=True, slots=True)
class Fact:
    event_id: str
    occurred_at: datetime
    kind: Kind
    actor: Actor
    amount: Decimal | None = None
    perceived_value: Decimal | None = None
    outcome: Outcome | None = None
    parties: tuple[str, str] | None = None
    """(supplier, customer), where the interaction names them (always on the first)."""
    source: str = ""
    ref: str | None = None
    currency: str | None = None

    @property
    def rule(self) -> KindRule:
        return KINDS[self.kind]

    @property
    def key(self) -> tuple[str, str]:
        """The idempotency key it was recorded under."""
        return (self.source, self.event_id)

    @property
    def retracted_key(self) -> tuple[str, str] | None:
        """For a retraction: the key of the interaction it takes back (same source)."""
        if not self.rule.retracts or self.ref is None:
            return None
        return (self.source, self.ref)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Fact:
        """Build a fact from a stored canonical interaction (already validated on the way in)."""
        amount = record.get("amount")
        perceived = record.get("perceived_value")
        outcome = record.get("outcome")
        parties = record.get("parties")
        return cls(
            record["event_id"],
            datetime.fromisoformat(record["occurred_at"]),
            _KINDS[record["kind"]],
            _ACTORS[record["actor"]],
            None if amount is None else Decimal(amount),
            None if perceived is None else Decimal(perceived),
            None if outcome is None else _OUTCOMES[outcome],
            None if parties is None else (parties["supplier"], parties["customer"]),
            record["source"],
            record.get("ref"),
            record.get("currency"),
        )

    @classmethod
    def from_interaction(cls, item: Interaction) -> Fact:
        return cls(
            event_id=item.event_id,
            occurred_at=item.occurred_at,
            kind=item.kind,
            actor=item.actor,
            amount=item.amount,
            perceived_value=item.perceived_value,
            outcome=item.outcome,
            parties=None
            if item.parties is None
            else (item.parties.supplier, item.parties.customer),
            source=item.source,
            ref=item.ref,
            currency=item.currency,
        )
