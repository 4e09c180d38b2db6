"""Fairness: what each party contributed and received, and who the exchange favours.

All money stays `Decimal`; only the index, a ratio, is turned into a number at
the edge (rounded to 4 places by the renderer).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal, localcontext
from enum import StrEnum

from domain.contract import Actor
from domain.fold.facts import Fact
from domain.kinds import KINDS, Money, Outcome
from domain.policy import FairnessRules

ZERO = Decimal(0)
ONE = Decimal(1)
MONEY_DIGITS = 60
"""Totals are added with this many significant digits, not Decimal's default 28: the
contract lets in amounts of 24 digits (a perceived value 1.2 times one has 26), and a
sum of n of them needs log10(n) digits more."""


class FairnessStatus(StrEnum):
    BALANCED = "balanced"
    SUPPLIER_ADVANTAGED = "supplier_advantaged"
    CUSTOMER_ADVANTAGED = "customer_advantaged"


@dataclass(frozen=True, slots=True)
class Ledger:
    """The running totals; `value_gap` is sum(perceived - paid) over transactions."""

    supplier_contributed: Decimal = ZERO
    supplier_received: Decimal = ZERO
    customer_contributed: Decimal = ZERO
    customer_received: Decimal = ZERO
    value_gap: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Fairness:
    index: Decimal
    status: FairnessStatus
    totals: Ledger


def perceived_value(fact: Fact, rules: FairnessRules) -> Decimal:
    """What the customer perceived: stated, or the default implied by the outcome."""
    assert fact.amount is not None
    if fact.perceived_value is not None:
        return fact.perceived_value
    if fact.outcome is Outcome.EXCEEDED:
        return rules.exceeded_perceived_factor * fact.amount
    if fact.outcome is Outcome.FAILED:
        return ZERO
    return fact.amount


def add(totals: Ledger, fact: Fact, rules: FairnessRules) -> Ledger:
    """The totals after one more interaction, every digit kept."""
    with localcontext(prec=MONEY_DIGITS):
        return _add(totals, fact, rules)


def _add(totals: Ledger, fact: Fact, rules: FairnessRules) -> Ledger:
    amount = fact.amount
    if amount is None:
        return totals
    money = KINDS[fact.kind].money
    if money is Money.EXCHANGE:
        perceived = perceived_value(fact, rules)
        return Ledger(
            supplier_contributed=totals.supplier_contributed + amount,
            supplier_received=totals.supplier_received + amount,
            customer_contributed=totals.customer_contributed + amount,
            customer_received=totals.customer_received + perceived,
            value_gap=totals.value_gap + (perceived - amount),
        )
    supplier = fact.actor is Actor.SUPPLIER
    if money is Money.CONTRIBUTED:
        if supplier:
            return replace(totals, supplier_contributed=totals.supplier_contributed + amount)
        return replace(totals, customer_contributed=totals.customer_contributed + amount)
    if money is Money.RECEIVED:
        if supplier:
            return replace(totals, supplier_received=totals.supplier_received + amount)
        return replace(totals, customer_received=totals.customer_received + amount)
    return totals


def _equity(contributed: Decimal, received: Decimal) -> Decimal | None:
    """R / C; None stands for infinity (received something for nothing)."""
    if contributed == ZERO:
        return ONE if received == ZERO else None
    return received / contributed


def fairness_of(totals: Ledger, rules: FairnessRules) -> Fairness:
    supplier = _equity(totals.supplier_contributed, totals.supplier_received)
    customer = _equity(totals.customer_contributed, totals.customer_received)
    if supplier is None and customer is None:
        index = ZERO
    elif supplier is None:
        index = ONE
    elif customer is None:
        index = -ONE
    elif supplier + customer == ZERO:
        index = ZERO  # neither received anything for what it gave: equally badly off
    else:
        index = (supplier - customer) / (supplier + customer)
    if abs(index) <= rules.balanced_within:
        status = FairnessStatus.BALANCED
    elif index > 0:
        status = FairnessStatus.SUPPLIER_ADVANTAGED
    else:
        status = FairnessStatus.CUSTOMER_ADVANTAGED
    return Fairness(index=index, status=status, totals=totals)
