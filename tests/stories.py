"""Hand-made stories of facts, written the way one tells them.

    story = (
        Story(start="2025-01-06")
        .contact()
        .trial(amount="40", outcome="met", days=3)
        .purchase(amount="100", outcome="exceeded", days=10)
    )
    scorer = story.fold(policy)

Events are numbered e1, e2, ... in the order they are told (the recorded order).
`days` places an event that many days (fractions allowed) after the latest event
so far, like the fold's clock; `on` places it on a day counted from `start`, which
is how a late event is told. The first event is on day 0 unless `on` says otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path

from domain.contract import Actor
from domain.fold.facts import Fact
from domain.fold.scorer import Scorer, replay
from domain.kinds import Kind, Outcome
from domain.policy import Policy

ROOT = Path(__file__).resolve().parent.parent


@cache
def load_v1() -> Policy:
    """The shipped default policy, read once."""
    return Policy.from_toml((ROOT / "domain" / "policies" / "v1.toml").read_text())


class Story:
    def __init__(self, start: str = "2025-01-06") -> None:
        self.start = datetime.fromisoformat(start).replace(tzinfo=UTC)
        self.facts: list[Fact] = []
        self.latest: float | None = None  # the latest day told so far

    def day(self, number: float) -> datetime:
        """The moment `number` days after the start (for as_of queries and assertions)."""
        return self.start + timedelta(days=number)

    def event(
        self,
        kind: str,
        *,
        days: float = 1,
        on: float | None = None,
        actor: str = "customer",
        amount: str | None = None,
        outcome: str | None = None,
        perceived_value: str | None = None,
    ) -> Story:
        if on is None:
            on = 0 if self.latest is None else self.latest + days
        self.latest = on if self.latest is None else max(self.latest, on)
        self.facts.append(
            Fact(
                event_id=f"e{len(self.facts) + 1}",
                occurred_at=self.day(on),
                kind=Kind(kind),
                actor=Actor(actor),
                amount=None if amount is None else Decimal(amount),
                perceived_value=None if perceived_value is None else Decimal(perceived_value),
                outcome=None if outcome is None else Outcome(outcome),
            )
        )
        return self

    # Transactions and other kinds that carry money or an outcome.

    def trial(self, amount: str = "100", outcome: str = "met", **when: float) -> Story:
        return self.event("trial", amount=amount, outcome=outcome, **when)

    def purchase(
        self,
        amount: str = "100",
        outcome: str = "met",
        perceived_value: str | None = None,
        **when: float,
    ) -> Story:
        return self.event(
            "purchase", amount=amount, outcome=outcome, perceived_value=perceived_value, **when
        )

    def service(self, outcome: str = "met", **when: float) -> Story:
        return self.event("service", outcome=outcome, **when)

    def contribution(self, amount: str, actor: str, **when: float) -> Story:
        return self.event("contribution", amount=amount, actor=actor, **when)

    def reward(self, amount: str, actor: str, **when: float) -> Story:
        return self.event("reward", amount=amount, actor=actor, **when)

    # Kinds that carry nothing more.

    def contact(self, **when: float) -> Story:
        return self.event("contact", **when)

    def communication(self, **when: float) -> Story:
        return self.event("communication", **when)

    def agreement(self, **when: float) -> Story:
        return self.event("agreement", **when)

    def promise(self, **when: float) -> Story:
        return self.event("promise", **when)

    def promise_kept(self, **when: float) -> Story:
        return self.event("promise_kept", **when)

    def promise_broken(self, **when: float) -> Story:
        return self.event("promise_broken", **when)

    def disagreement(self, **when: float) -> Story:
        return self.event("disagreement", **when)

    def resolution(self, **when: float) -> Story:
        return self.event("resolution", **when)

    def collaboration(self, **when: float) -> Story:
        return self.event("collaboration", **when)

    def referral(self, **when: float) -> Story:
        return self.event("referral", **when)

    def breach(self, **when: float) -> Story:
        return self.event("breach", actor="supplier", **when)

    def termination(self, **when: float) -> Story:
        return self.event("termination", **when)

    def reactivation(self, **when: float) -> Story:
        return self.event("reactivation", **when)

    def fold(self, policy: Policy | None = None) -> Scorer:
        return replay(self.facts, policy or load_v1())
