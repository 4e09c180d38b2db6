"""The input contract `interaction/v1`: what producers send, checked at the door.

Pydantic checks shapes and types; `_check_kind_rules` checks what depends on the
kind (a purchase needs an amount, a termination a mode). Both report through
`ContractViolation`, so a producer always sees `field: reason`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)

from domain.errors import ContractViolation

CONTRACT = "interaction/v1"
MAX_ATTRIBUTES_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class IntakeLimits:
    """What intake accepts beyond the schema; each limit is configurable by operators.

    `max_message_bytes`: a line or message larger than this is refused before it is
    parsed. `max_future_skew`: how far past the recording clock an `occurred_at` may lie
    (producers' clocks drift; a year-9999 date would freeze a relationship's clock).
    """

    max_message_bytes: int = 1024 * 1024
    max_future_skew: timedelta = timedelta(days=1)


DEFAULT_LIMITS = IntakeLimits()


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


class Actor(StrEnum):
    SUPPLIER = "supplier"
    CUSTOMER = "customer"


class Outcome(StrEnum):
    MET = "met"
    EXCEEDED = "exceeded"
    FAILED = "failed"


class Mode(StrEnum):
    UNILATERAL = "unilateral"
    BILATERAL = "bilateral"


TRANSACTIONS = frozenset({Kind.TRIAL, Kind.PURCHASE})
"""Kinds that move money between the parties and count as transactions."""

_NEEDS_AMOUNT = frozenset({Kind.TRIAL, Kind.PURCHASE, Kind.CONTRIBUTION, Kind.REWARD})
_NEEDS_OUTCOME = frozenset({Kind.TRIAL, Kind.PURCHASE, Kind.SERVICE})
_NEEDS_REF = frozenset({Kind.PROMISE_KEPT, Kind.PROMISE_BROKEN})
_MAY_REF = _NEEDS_REF | {Kind.RESOLUTION}


_DECIMAL = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,6})?")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ]")


def _decimal_string(value: object) -> Decimal:
    """Money arrives as plain decimal text, so no float ever rounds it on the way in.

    At most 15 digits before the point and 6 after: sums of such amounts stay exact
    in `Decimal`'s default 28-digit context, so money is exact end to end.
    """
    if isinstance(value, Decimal):
        return value
    if not isinstance(value, str):
        raise ValueError('must be a decimal string such as "12.50", not a JSON number')
    if not _DECIMAL.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a plain decimal (digits, an optional point, at most 15 "
            "digits before it and 6 after)"
        )
    return Decimal(value)


def _iso_string(value: object) -> object:
    """Only ISO 8601 text: epoch seconds, as numbers or as strings, are refused."""
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATE.match(value)):
        return value
    raise ValueError("must be an ISO 8601 timestamp string with a timezone")


def _attributes_fit(value: dict[str, Any]) -> dict[str, Any]:
    size = len(orjson.dumps(value))
    if size > MAX_ATTRIBUTES_BYTES:
        raise ValueError(f"is {size} bytes as JSON; the limit is {MAX_ATTRIBUTES_BYTES}")
    return value


DecimalString = Annotated[Decimal, BeforeValidator(_decimal_string)]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_string)]
Attributes = Annotated[dict[str, Any], AfterValidator(_attributes_fit)]


class Parties(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    supplier: str = Field(min_length=1, max_length=200)
    customer: str = Field(min_length=1, max_length=200)


class Interaction(BaseModel):
    """One interaction between the two parties of a relationship, as a producer states it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=100)
    relationship_id: str = Field(min_length=1, max_length=200)
    occurred_at: Timestamp
    kind: Kind
    actor: Actor
    parties: Parties | None = None
    amount: DecimalString | None = Field(default=None, gt=0)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    perceived_value: DecimalString | None = Field(default=None, ge=0)
    outcome: Outcome | None = None
    ref: str | None = Field(default=None, min_length=1, max_length=200)
    mode: Mode | None = None
    note: str | None = Field(default=None, max_length=2000)
    attributes: Attributes | None = None

    @property
    def key(self) -> tuple[str, str]:
        """The idempotency key: a producer never reuses an event_id."""
        return (self.source, self.event_id)

    def canonical(self) -> dict[str, Any]:
        """The JSON form that is stored and hashed: absent fields left out, money as text."""
        return self.model_dump(mode="json", exclude_none=True)


def _check_kind_rules(item: Interaction) -> None:
    kind = item.kind
    problems: list[tuple[str, str]] = []

    def field_rule(name: str, present: bool, required: bool, allowed: bool) -> None:
        if required and not present:
            problems.append((name, f"required for kind '{kind}'"))
        elif present and not allowed:
            problems.append((name, f"not used by kind '{kind}'"))

    has_amount = item.amount is not None
    field_rule("amount", has_amount, kind in _NEEDS_AMOUNT, kind in _NEEDS_AMOUNT)
    field_rule("currency", item.currency is not None, has_amount, kind in _NEEDS_AMOUNT)
    field_rule("perceived_value", item.perceived_value is not None, False, kind in TRANSACTIONS)
    field_rule("outcome", item.outcome is not None, kind in _NEEDS_OUTCOME, kind in _NEEDS_OUTCOME)
    field_rule("ref", item.ref is not None, kind in _NEEDS_REF, kind in _MAY_REF)
    field_rule("mode", item.mode is not None, kind is Kind.TERMINATION, kind is Kind.TERMINATION)
    if problems:
        raise ContractViolation.of(problems)


_READABLE = {
    "extra_forbidden": "unknown field (not part of interaction/v1)",
    "missing": "required",
    "timezone_aware": "must carry a timezone offset (e.g. Z or +02:00)",
}


def _describe(error: Any) -> tuple[str, str]:
    loc = ".".join(str(part) for part in error["loc"])
    kind = error["type"]
    if kind == "json_invalid":
        return ("json", f"not valid JSON ({error['ctx']['error']})")
    if not loc:
        return ("json", "must be a JSON object")
    message = _READABLE.get(kind, error["msg"])
    return (loc, message.removeprefix("Value error, "))


def parse_interaction(
    raw: str | bytes | dict[str, Any],
    *,
    received_at: datetime | None = None,
    limits: IntakeLimits = DEFAULT_LIMITS,
) -> Interaction:
    """Validate one message (JSON text or an already decoded object) against interaction/v1.

    `received_at` is the recording clock (default: now), used only here at intake to
    refuse dates too far in the future; folds never read a clock.
    """
    try:
        if isinstance(raw, dict):
            item = Interaction.model_validate(raw)
        else:
            item = Interaction.model_validate_json(raw)
    except ValidationError as error:
        raise ContractViolation.of([_describe(e) for e in error.errors()]) from None
    _check_kind_rules(item)
    return item
