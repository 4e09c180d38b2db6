"""What a fold produces: the standing of a relationship and the history behind it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from domain.fold.fairness import Fairness
from domain.fold.stage import Stage


class Phase(StrEnum):
    AWARENESS = "awareness"
    EXPLORATION = "exploration"
    EXPANSION = "expansion"
    COMMITMENT = "commitment"
    DISSOLUTION = "dissolution"


class Connection(StrEnum):
    FORMATION = "formation"
    DIVERGENCE = "divergence"
    CONVERGENCE = "convergence"
    ASSOCIATION = "association"


@dataclass(frozen=True, slots=True)
class TrustChange:
    """One move of trust, with the event and the policy rule that caused it (`retraction`
    for the step from the figures before a retraction to the corrected ones)."""

    event_id: str
    occurred_at: datetime
    rule: str
    before: float
    after: float
    policy: str

    @property
    def delta(self) -> float:
        return self.after - self.before


@dataclass(frozen=True, slots=True)
class PhaseChange:
    """One phase transition; `from_phase` is None for the relationship's first phase."""

    event_id: str
    occurred_at: datetime
    from_phase: Phase | None
    to_phase: Phase
    rule: str
    policy: str


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a relationship stands after a fold, as of `as_of` (its clock, unless asked)."""

    phase: Phase | None
    stage: Stage
    connection: Connection
    trust: float
    credibility_lost: bool
    cycle: int
    events: int
    late_events: int
    open_disagreements: int
    fairness: Fairness
    last_event_at: datetime | None
    as_of: datetime | None
    policy: str
    parties: tuple[str, str] | None = None
    """(supplier, customer), as the relationship's first interaction named them."""
    retracted: int = 0
    """Interactions taken back by a retraction (they, and their retractions, no longer
    count anywhere in these figures)."""
    currency: str | None = None
    """The currency its money is kept in, once an interaction carried an amount."""
    first_event_at: datetime | None = None
    """The earliest `occurred_at` among the interactions that count."""
