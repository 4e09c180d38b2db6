"""Trust arithmetic: slow diminishing gains, losses that weigh double, breach, dormancy.

Each function returns the new trust and the rule that moved it, so the caller can
record a change with its cause. None of them looks at a clock: the gap in days
comes from event timestamps.
"""

from __future__ import annotations

from domain.fold.facts import Fact
from domain.kinds import KINDS, TRANSACTIONS, Evidence, Outcome
from domain.policy import TrustRules

BREACH_RULE = "breach"
DORMANCY_RULE = "dormancy"


def evidence_of(fact: Fact) -> str | None:
    """Which policy entry an interaction is evidence for: its outcome, or its kind."""
    evidence = KINDS[fact.kind].evidence
    if evidence is Evidence.OUTCOME:
        return None if fact.outcome is None else fact.outcome.value
    return fact.kind.value if evidence is Evidence.KIND else None


def cap(trust: float, rules: TrustRules, credibility_lost: bool) -> float:
    trust = min(100.0, max(0.0, trust))
    if credibility_lost:
        trust = min(trust, rules.breach.credibility_cap)
    return trust


def after_dormancy(trust: float, gap_days: float, rules: TrustRules) -> float:
    """Trust fades toward the dormancy target after a long silence; it never rises by it."""
    dormancy = rules.dormancy
    if gap_days <= dormancy.after_days or trust <= dormancy.target:
        return trust
    fraction: float = 1.0 - 2.0 ** (-gap_days / dormancy.half_life_days)
    return trust - (trust - dormancy.target) * fraction


def after_evidence(trust: float, fact: Fact, rules: TrustRules) -> tuple[float, str] | None:
    """The trust an interaction leaves and the rule applied, or None if it is no evidence."""
    if KINDS[fact.kind].evidence is Evidence.BREACH:
        return trust * rules.breach.factor, BREACH_RULE
    evidence = evidence_of(fact)
    if evidence is None:
        return None
    strength = rules.strengths.get(evidence)
    if strength is not None:
        return trust + rules.gain_rate * strength * (100.0 - trust) / 100.0, f"gain:{evidence}"
    severity = rules.severities.get(evidence)
    if severity is not None:
        return trust - rules.loss_rate * severity * trust / 100.0, f"loss:{evidence}"
    return None


def is_success(fact: Fact) -> bool:
    return fact.kind in TRANSACTIONS and fact.outcome in (Outcome.MET, Outcome.EXCEEDED)


def is_failed_transaction(fact: Fact) -> bool:
    return fact.kind in TRANSACTIONS and fact.outcome is Outcome.FAILED
