"""The fold: one relationship's interactions, in recorded order, into its standing.

`Scorer` is the accumulator; it is deliberately mutable and private to one fold so
that replaying 10,000 events stays linear. Everything it reads comes from the
facts and the policy: the clock is the latest `occurred_at` seen, never the wall
clock, so a replay is reproducible bit for bit.

Per event (docs/policy.md): dormancy, trust change, connection, then phase rules
applied until none applies. What a kind does is read from its row in `domain.kinds`.

A retraction refolds the relationship without the interaction it takes back (nor
itself) and steps from the figures before it to the corrected ones; the histories
already taken stay as they were, since they are what was shown at the time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta

from domain.fold import fairness, trust
from domain.fold.facts import Fact
from domain.fold.records import Connection, Phase, PhaseChange, Standing, TrustChange
from domain.fold.stage import Stage, Volume
from domain.kinds import TRANSACTIONS, Bond, Evidence, Turn
from domain.policy import Policy

_SECONDS_PER_DAY = 86400.0
RETRACTION_RULE = "retraction"
Earlier = Callable[[], Sequence[Fact]]
"""The facts recorded before one, in recorded order: what a retraction refolds."""


@dataclass(slots=True)
class Scorer:
    policy: Policy
    trust: float = field(init=False)
    credibility_lost: bool = False
    phase: Phase | None = None
    cycle: int = 0
    cycle_started: datetime | None = None
    successes: int = 0
    agreement_seen: bool = False
    clock: datetime | None = None
    connection: Connection = Connection.FORMATION
    open_disagreements: int = 0
    events: int = 0
    late_events: int = 0
    totals: fairness.Ledger = field(default_factory=fairness.Ledger)
    volume: Volume = field(default_factory=Volume)
    parties: tuple[str, str] | None = None
    retracted: int = 0
    currency: str | None = None
    first_event_at: datetime | None = None
    trust_changes: list[TrustChange] = field(default_factory=list)
    phase_changes: list[PhaseChange] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.trust = self.policy.trust.initial

    def apply(self, fact: Fact, earlier: Earlier | None = None) -> None:
        """Fold one more interaction; a retraction needs `earlier` to refold from."""
        if fact.rule.retracts:
            if earlier is None:
                raise ValueError("a retraction is folded with the facts recorded before it")
            self._retract(fact, earlier())
            return
        self.events += 1
        if self.parties is None:
            self.parties = fact.parties
        if self.currency is None:
            self.currency = fact.currency
        if self.first_event_at is None or fact.occurred_at < self.first_event_at:
            self.first_event_at = fact.occurred_at
        self._advance_clock(fact)
        self._score_trust(fact)
        self._connect(fact)
        self._count_cycle(fact)
        self._move_phase(fact)
        self.totals = fairness.add(self.totals, fact, self.policy.fairness)
        assert self.clock is not None
        self.volume.add(fact, self.clock, self.policy.stage)

    def apply_all(self, facts: Iterable[Fact]) -> Scorer:
        """Fold facts in recorded order (retractions included)."""
        seen: list[Fact] = []
        for fact in facts:
            self.apply(fact, lambda: seen)
            seen.append(fact)
        return self

    def _retract(self, retraction: Fact, earlier: Sequence[Fact]) -> None:
        """Become the fold of `earlier` without what was retracted, keeping the histories
        taken so far and recording the step to the corrected figures."""
        taken_back = {fact.retracted_key for fact in (*earlier, retraction)} - {None}
        corrected = Scorer(self.policy).apply_all(
            fact for fact in earlier if not fact.rule.retracts and fact.key not in taken_back
        )
        self._move_trust(retraction, corrected.trust, RETRACTION_RULE)  # the cap was applied
        if corrected.phase is not None and corrected.phase != self.phase:
            self.phase_changes.append(
                PhaseChange(
                    event_id=retraction.event_id,
                    occurred_at=retraction.occurred_at,
                    from_phase=self.phase,
                    to_phase=corrected.phase,
                    rule=RETRACTION_RULE,
                    policy=self.policy.version,
                )
            )
        kept = ("policy", "parties", "currency", "retracted", "trust_changes", "phase_changes")
        for name in (f.name for f in fields(self) if f.name not in kept):
            setattr(self, name, getattr(corrected, name))
        self.parties = self.parties or corrected.parties
        self.currency = self.currency or corrected.currency
        self.retracted += 1

    def standing(self, as_of: datetime | None = None) -> Standing:
        """The figures now; stage windows end at `as_of` when a query asks for a moment."""
        end = as_of if as_of is not None else self.clock
        stage = Stage.EMERGING if end is None else self.volume.stage_at(end, self.policy.stage)
        return Standing(
            phase=self.phase,
            stage=stage,
            connection=self.connection,
            trust=self.trust,
            credibility_lost=self.credibility_lost,
            cycle=self.cycle,
            events=self.events,
            late_events=self.late_events,
            open_disagreements=self.open_disagreements,
            fairness=fairness.fairness_of(self.totals, self.policy.fairness),
            last_event_at=self.clock,
            as_of=as_of,
            policy=self.policy.version,
            parties=self.parties,
            retracted=self.retracted,
            currency=self.currency,
            first_event_at=self.first_event_at,
        )

    def _advance_clock(self, fact: Fact) -> None:
        at = fact.occurred_at
        if self.clock is None:
            self.clock = at
            return
        if at < self.clock:
            self.late_events += 1
            return
        gap_days = (at - self.clock).total_seconds() / _SECONDS_PER_DAY
        self.clock = at
        faded = trust.after_dormancy(self.trust, gap_days, self.policy.trust)
        if faded != self.trust:
            self._set_trust(fact, faded, trust.DORMANCY_RULE)

    def _score_trust(self, fact: Fact) -> None:
        if fact.rule.evidence is Evidence.BREACH:
            self.credibility_lost = True
        moved = trust.after_evidence(self.trust, fact, self.policy.trust)
        if moved is not None:
            self._set_trust(fact, *moved)

    def _set_trust(self, fact: Fact, value: float, rule: str) -> None:
        self._move_trust(fact, trust.cap(value, self.policy.trust, self.credibility_lost), rule)

    def _move_trust(self, fact: Fact, value: float, rule: str) -> None:
        """Trust becomes `value`, recorded as a change caused by `fact` (if it moved)."""
        if value != self.trust:
            self.trust_changes.append(
                TrustChange(
                    event_id=fact.event_id,
                    occurred_at=fact.occurred_at,
                    rule=rule,
                    before=self.trust,
                    after=value,
                    policy=self.policy.version,
                )
            )
            self.trust = value

    def _connect(self, fact: Fact) -> None:
        bond = fact.rule.bond
        if bond is Bond.DISAGREES:
            self.open_disagreements += 1
            self.connection = Connection.DIVERGENCE
        elif bond is Bond.RESOLVES or bond is Bond.AGREES:
            if bond is Bond.RESOLVES:
                self.open_disagreements = max(0, self.open_disagreements - 1)
            # both converge only from divergence; any other phase is left as it is
            if self.connection is Connection.DIVERGENCE:
                self.connection = Connection.CONVERGENCE
        elif bond is Bond.COLLABORATES:
            if self.open_disagreements == 0:
                self.connection = Connection.ASSOCIATION
        elif bond is Bond.REVIVES and self.phase is Phase.DISSOLUTION:
            # only a reactivation that revives a dissolved relationship starts afresh
            self.open_disagreements = 0
            self.connection = Connection.FORMATION

    def _count_cycle(self, fact: Fact) -> None:
        if trust.is_success(fact):
            self.successes += 1
        if fact.rule.bond is Bond.AGREES:
            self.agreement_seen = True

    def _move_phase(self, fact: Fact) -> None:
        fired: set[str] = set()
        if self.phase is Phase.DISSOLUTION:
            fired.discard("revival")
        else:
            fired.add("revival")  # only a relationship dissolved before this event revives
        if self.phase is None:
            self.cycle = 1
            self.cycle_started = self.clock
        while (step := self._next_phase(fact, fired)) is not None:
            to_phase, rule = step
            fired.add(rule)
            self.phase_changes.append(
                PhaseChange(
                    event_id=fact.event_id,
                    occurred_at=fact.occurred_at,
                    from_phase=self.phase,
                    to_phase=to_phase,
                    rule=rule,
                    policy=self.policy.version,
                )
            )
            if to_phase is Phase.EXPLORATION and self.phase is Phase.DISSOLUTION:
                self._start_cycle(fact)
            self.phase = to_phase

    def _start_cycle(self, fact: Fact) -> None:
        self.cycle += 1
        self.cycle_started = self.clock
        self.successes = 1 if trust.is_success(fact) else 0
        self.agreement_seen = False

    def _next_phase(self, fact: Fact, fired: set[str]) -> tuple[Phase, str] | None:
        """The one rule that applies now, if any; event-triggered rules fire once per event."""
        rules = self.policy.phase
        kind = fact.kind
        turn = fact.rule.turn
        level = self.trust
        phase = self.phase
        if phase is None:
            if kind in TRANSACTIONS:
                return Phase.EXPLORATION, "first_transaction"
            return Phase.AWARENESS, "first_event"
        if phase is not Phase.DISSOLUTION:
            if turn is Turn.TERMINATES and "termination" not in fired:
                return Phase.DISSOLUTION, "termination"
            if (
                turn is Turn.BREAKS
                and level < rules.breach_dissolution_below
                and "breach" not in fired
            ):
                return Phase.DISSOLUTION, "breach"
        if phase is Phase.DISSOLUTION:
            if (turn is Turn.REVIVES or kind in TRANSACTIONS) and "revival" not in fired:
                return Phase.EXPLORATION, "revival"
            return None
        if phase is Phase.AWARENESS:
            if kind in TRANSACTIONS:
                return Phase.EXPLORATION, "first_transaction"
            return None
        if phase is Phase.EXPLORATION:
            if (
                trust.is_failed_transaction(fact)
                and level < rules.exploration_failure_below
                and "failed_exploration" not in fired
            ):
                return Phase.DISSOLUTION, "failed_exploration"
            if (
                self.successes >= rules.expansion_min_successes
                and level >= rules.expansion_min_trust
            ):
                return Phase.EXPANSION, "proven_in_exploration"
            return None
        if phase is Phase.EXPANSION:
            if level < rules.expansion_exit_below:
                return Phase.EXPLORATION, "trust_below_expansion"
            if (
                level >= rules.commitment_min_trust
                and self._old_enough()
                and (self.agreement_seen or self.successes >= rules.commitment_min_successes)
            ):
                return Phase.COMMITMENT, "committed"
            return None
        if level < rules.commitment_exit_below:
            return Phase.EXPANSION, "trust_below_commitment"
        return None

    def _old_enough(self) -> bool:
        assert self.clock is not None and self.cycle_started is not None
        age = self.clock - self.cycle_started
        return age >= timedelta(days=self.policy.phase.commitment_min_age_days)


def replay(facts: Iterable[Fact], policy: Policy, as_of: datetime | None = None) -> Scorer:
    """Fold facts in recorded order; with `as_of`, only those that occurred by then (so a
    retraction that occurred later is not applied: the figures shown before it)."""
    scorer = Scorer(policy)
    if as_of is None:
        return scorer.apply_all(facts)
    return scorer.apply_all(fact for fact in facts if fact.occurred_at <= as_of)
