"""Every kind of interaction and its rules, in one table.

What a kind needs at the door (the contract), what it does to trust, money, the
connection and the phase (the folds), which policy keys can weigh it, what the
simulator fills in and what docs/contract.md lists: all of it is read from `KINDS`.
Adding a kind is one row here; a test checks the documentation against the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    CONTACT = "contact"
    TRIAL = "trial"
    PURCHASE = "purchase"
    SERVICE = "service"
    COMMUNICATION = "communication"
    AGREEMENT = "agreement"
    PROMISE = "promise"
    PROMISE_KEPT = "promise_kept"
    PROMISE_BROKEN = "promise_broken"
    DISAGREEMENT = "disagreement"
    RESOLUTION = "resolution"
    COLLABORATION = "collaboration"
    REFERRAL = "referral"
    CONTRIBUTION = "contribution"
    REWARD = "reward"
    ACCOUNT_UPDATE = "account_update"
    INVITATION = "invitation"
    BREACH = "breach"
    TERMINATION = "termination"
    REACTIVATION = "reactivation"
    RETRACTION = "retraction"


class Outcome(StrEnum):
    MET = "met"
    EXCEEDED = "exceeded"
    FAILED = "failed"


class Need(StrEnum):
    """Whether a kind uses an optional field of the contract."""

    REQUIRED = "required"
    OPTIONAL = "optional"
    NOT_USED = "not used"


class Evidence(StrEnum):
    """What trust reads from an interaction of this kind."""

    OUTCOME = "outcome"
    """Its outcome (met, exceeded, failed) is the evidence."""
    KIND = "kind"
    """The kind itself is, if the policy gives it a strength or a severity."""
    BREACH = "breach"
    """The breach rule: trust multiplied by its factor, credibility lost."""
    NONE = "none"


class Money(StrEnum):
    """How its `amount` moves the fairness totals."""

    NONE = "none"
    EXCHANGE = "exchange"
    """A transaction: the supplier gives and gets the amount, the customer pays it and
    receives what it perceived."""
    CONTRIBUTED = "contributed"
    """The actor contributed the amount."""
    RECEIVED = "received"
    """The actor received the amount."""


class Bond(StrEnum):
    """What it does to the connection between the parties."""

    NONE = "none"
    DISAGREES = "disagrees"
    """Opens a disagreement: divergence."""
    RESOLVES = "resolves"
    """Closes one disagreement; converges from divergence."""
    AGREES = "agrees"
    """Converges from divergence; counts as the cycle's agreement."""
    COLLABORATES = "collaborates"
    """Association, when no disagreement is open."""
    REVIVES = "revives"
    """Starts the connection afresh if the relationship was dissolved."""


class Turn(StrEnum):
    """The phase change it triggers by itself (trust-driven changes aside)."""

    NONE = "none"
    TERMINATES = "terminates"
    """Dissolution."""
    BREAKS = "breaks"
    """Dissolution if trust falls below the policy's breach threshold."""
    REVIVES = "revives"
    """Exploration again, from dissolution."""


@dataclass(frozen=True, slots=True)
class KindRule:
    kind: Kind
    meaning: str
    amount: Need = Need.NOT_USED
    outcome: Need = Need.NOT_USED
    ref: Need = Need.NOT_USED
    mode: Need = Need.NOT_USED
    evidence: Evidence = Evidence.KIND
    money: Money = Money.NONE
    bond: Bond = Bond.NONE
    turn: Turn = Turn.NONE
    retracts: bool = False
    """Takes back the interaction its `ref` names, as if neither had been recorded."""

    @property
    def is_transaction(self) -> bool:
        """Moves money between the parties: counts for volume, successes and revival."""
        return self.money is Money.EXCHANGE

    @property
    def perceived_value(self) -> Need:
        return Need.OPTIONAL if self.is_transaction else Need.NOT_USED


_TABLE = (
    KindRule(Kind.CONTACT, "a first or casual contact"),
    KindRule(
        Kind.TRIAL,
        "a first, smaller purchase to try the offer",
        amount=Need.REQUIRED,
        outcome=Need.REQUIRED,
        evidence=Evidence.OUTCOME,
        money=Money.EXCHANGE,
    ),
    KindRule(
        Kind.PURCHASE,
        "a purchase: money for goods or a service",
        amount=Need.REQUIRED,
        outcome=Need.REQUIRED,
        evidence=Evidence.OUTCOME,
        money=Money.EXCHANGE,
    ),
    KindRule(
        Kind.SERVICE,
        "a service delivered without a payment of its own (support, maintenance)",
        outcome=Need.REQUIRED,
        evidence=Evidence.OUTCOME,
    ),
    KindRule(Kind.COMMUNICATION, "a message, a call, a meeting"),
    KindRule(Kind.AGREEMENT, "a contract or an agreement concluded", bond=Bond.AGREES),
    KindRule(Kind.PROMISE, "a promise made (kept or broken later)"),
    KindRule(Kind.PROMISE_KEPT, "a promise kept", ref=Need.REQUIRED),
    KindRule(Kind.PROMISE_BROKEN, "a promise broken", ref=Need.REQUIRED),
    KindRule(Kind.DISAGREEMENT, "a complaint or a dispute", bond=Bond.DISAGREES),
    KindRule(
        Kind.RESOLUTION,
        "a dispute settled (`ref`: the disagreement)",
        ref=Need.OPTIONAL,
        bond=Bond.RESOLVES,
    ),
    KindRule(Kind.COLLABORATION, "working together on something", bond=Bond.COLLABORATES),
    KindRule(Kind.REFERRAL, "one party recommends the other"),
    KindRule(
        Kind.CONTRIBUTION,
        "the actor contributes something of value outside a sale",
        amount=Need.REQUIRED,
        money=Money.CONTRIBUTED,
    ),
    KindRule(
        Kind.REWARD,
        "the actor receives something of value (a discount, a bonus)",
        amount=Need.REQUIRED,
        money=Money.RECEIVED,
    ),
    KindRule(Kind.ACCOUNT_UPDATE, "account details kept up to date"),
    KindRule(Kind.INVITATION, "an invitation to an event or a programme"),
    KindRule(
        Kind.BREACH,
        "a breach of trust (fraud, a broken contract)",
        evidence=Evidence.BREACH,
        bond=Bond.DISAGREES,
        turn=Turn.BREAKS,
    ),
    KindRule(
        Kind.TERMINATION,
        "the relationship ends (`mode`: unilateral or bilateral)",
        mode=Need.REQUIRED,
        turn=Turn.TERMINATES,
    ),
    KindRule(
        Kind.REACTIVATION,
        "a dissolved relationship starts again",
        bond=Bond.REVIVES,
        turn=Turn.REVIVES,
    ),
    KindRule(
        Kind.RETRACTION,
        "takes back an earlier interaction of the same source (`ref`: its event_id)",
        ref=Need.REQUIRED,
        evidence=Evidence.NONE,
        retracts=True,
    ),
)

KINDS: dict[Kind, KindRule] = {rule.kind: rule for rule in _TABLE}
assert set(KINDS) == set(Kind), "every kind has exactly one row"

TRANSACTIONS = frozenset(rule.kind for rule in _TABLE if rule.is_transaction)
"""Kinds that move money between the parties and count as transactions."""

EVIDENCE_KEYS = frozenset(
    [outcome.value for outcome in Outcome]
    + [rule.kind.value for rule in _TABLE if rule.evidence is Evidence.KIND]
)
"""What a policy may give a strength or a severity: an outcome, or a kind that is
evidence by itself."""
