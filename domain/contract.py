"""The input contract `interaction/v1`: what producers send, checked at the door.

Whatever is recorded is folded, stored and shown for ever, so the door refuses what
any of these could not handle later: dates a fold cannot compute with, currencies
nobody can settle in, amounts too long to stay exact, JSON that other readers decode
differently (`domain/strict_json.py`), and text that rewrites a terminal
(`domain/text.py`). Pydantic checks shapes and types; `_kind_problems` checks what
depends on the kind (a purchase needs an amount, a termination a mode), as the kind's
row in `domain.kinds` says. Everything,
even an error nobody foresaw, reports through `ContractViolation`, so a producer always
sees `field: reason` and never a traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

import iso4217
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
from pydantic_core import PydanticCustomError

from domain.errors import ContractViolation
from domain.kinds import KINDS, Kind, Need, Outcome
from domain.strict_json import decode_object, json_problem
from domain.text import control_character, quote, readable, segment

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


class Actor(StrEnum):
    SUPPLIER = "supplier"
    CUSTOMER = "customer"


class Mode(StrEnum):
    UNILATERAL = "unilateral"
    BILATERAL = "bilateral"


MAX_INTEGER_DIGITS = 18
MAX_DECIMALS = 6
_DECIMAL = re.compile(rf"-?[0-9]{{1,{MAX_INTEGER_DIGITS}}}(\.[0-9]{{1,{MAX_DECIMALS}}})?")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ]")

_PRINTABLE = r"^[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}]*$"
"""Identifiers: no control or format character (checked by pydantic-core's regex engine,
which also refuses lone surrogates; `domain/text.py` names the character)."""

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
"""No interaction is older: folds subtract periods from dates, and year 1 overflows."""

MONEY_CURRENCIES = frozenset(c.code for c in iso4217.Currency if c.exponent is not None)
"""ISO 4217 codes with a minor unit: the currencies money is counted in. Funds, precious
metals, `XTS` (testing) and `XXX` (no currency) have none."""
_ISO_CODES = frozenset(c.code for c in iso4217.Currency)


_NOT_PLAIN = (
    f"is not a plain decimal (digits, an optional point, at most {MAX_INTEGER_DIGITS} digits "
    f"before it and {MAX_DECIMALS} after)"
)


def _decimal_string(value: object) -> Decimal:
    """Money arrives as plain decimal text, so no float ever rounds it on the way in.

    At most 18 digits before the point and 6 after (24 significant digits): a sum of n
    such amounts needs 24 + log10(n) digits, more than `Decimal`'s default 28 once n
    reaches 10,000, so whatever adds amounts must do so in a wider context.
    """
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        plain = isinstance(exponent, int) and -MAX_DECIMALS <= exponent <= 0
        if plain and value.adjusted() < MAX_INTEGER_DIGITS:
            return value
        raise ValueError(f"{quote(str(value))} {_NOT_PLAIN}")
    if not isinstance(value, str):
        raise ValueError('must be a decimal string such as "12.50", not a JSON number')
    if not _DECIMAL.fullmatch(value):
        raise ValueError(f"{quote(value)} {_NOT_PLAIN}")
    return Decimal(value)


def _iso_string(value: object) -> object:
    """Only ISO 8601 text: epoch seconds, as numbers or as strings, are refused."""
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATE.match(value)):
        return value
    raise ValueError("must be an ISO 8601 timestamp string with a timezone")


def _not_too_old(value: datetime) -> datetime:
    if value < EARLIEST:
        raise ValueError(f"{value.isoformat()} is before {EARLIEST.date().isoformat()}")
    return value


def _too_late(item: Interaction, received_at: datetime, skew: timedelta) -> str | None:
    """Why `occurred_at` lies too far past the recording clock, or None."""
    try:
        latest = received_at + skew
    except OverflowError:
        return None
    if item.occurred_at <= latest:
        return None
    return (
        f"{item.occurred_at.isoformat()} is more than {_span(skew)} after the recording "
        f"time {received_at.isoformat(timespec='seconds')}"
    )


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} seconds"


def _currency(value: str) -> str:
    if value in MONEY_CURRENCIES:
        return value
    if value in _ISO_CODES:
        raise ValueError(
            f"{quote(value)} has no minor unit in ISO 4217 (a fund, metal, test or "
            "no-currency code), so it cannot count money"
        )
    raise ValueError(f"{quote(value)} is not an ISO 4217 currency code")


def _prose(value: str) -> str:
    problem = control_character(value, prose=True)
    if problem:
        raise ValueError(f"{problem}; only printable characters, newline and tab are allowed")
    return value


def _attributes_fit(value: dict[str, Any]) -> dict[str, Any]:
    """Strict JSON (`domain/strict_json.py`) and at most 16 KiB once encoded."""
    try:
        size: int | None = len(orjson.dumps(value))
    except orjson.JSONEncodeError:
        size = None
    if size is not None and size > MAX_ATTRIBUTES_BYTES:
        raise ValueError(f"is {size} bytes as JSON; the limit is {MAX_ATTRIBUTES_BYTES}")
    problem = json_problem(value)
    if problem is not None:
        at, reason = problem
        raise PydanticCustomError("json_value", "{reason}", {"reason": reason, "at": at})
    if size is None:
        raise ValueError("cannot be encoded as JSON")
    return value


DecimalString = Annotated[Decimal, BeforeValidator(_decimal_string)]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_string), AfterValidator(_not_too_old)]
Attributes = Annotated[dict[str, Any], AfterValidator(_attributes_fit)]
Identifier = Annotated[str, Field(pattern=_PRINTABLE)]
Prose = Annotated[str, AfterValidator(_prose)]
CurrencyCode = Annotated[str, AfterValidator(_currency)]


class Parties(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    supplier: Identifier = Field(min_length=1, max_length=200)
    customer: Identifier = Field(min_length=1, max_length=200)


class Interaction(BaseModel):
    """One interaction between the two parties of a relationship, as a producer states it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Identifier = Field(min_length=1, max_length=200)
    source: Identifier = Field(min_length=1, max_length=100)
    relationship_id: Identifier = Field(min_length=1, max_length=200)
    occurred_at: Timestamp
    kind: Kind
    actor: Actor
    parties: Parties | None = None
    amount: DecimalString | None = Field(default=None, gt=0)
    currency: CurrencyCode | None = None
    perceived_value: DecimalString | None = Field(default=None, ge=0)
    outcome: Outcome | None = None
    ref: Identifier | None = Field(default=None, min_length=1, max_length=200)
    mode: Mode | None = None
    note: Prose | None = Field(default=None, max_length=2000)
    attributes: Attributes | None = None

    @property
    def key(self) -> tuple[str, str]:
        """The idempotency key: a producer never reuses an event_id."""
        return (self.source, self.event_id)

    def canonical(self) -> dict[str, Any]:
        """The JSON form that is stored and hashed: absent fields left out, money as text."""
        return self.model_dump(mode="json", exclude_none=True)


def _kind_problems(item: Interaction) -> list[tuple[str, str]]:
    """The fields this kind requires or does not use, from its row in `domain.kinds`."""
    rule = KINDS[item.kind]
    has_amount = item.amount is not None
    rules = (  # field, required, allowed
        ("amount", rule.amount is Need.REQUIRED, rule.amount is not Need.NOT_USED),
        ("currency", has_amount, rule.amount is not Need.NOT_USED),
        ("perceived_value", False, rule.perceived_value is not Need.NOT_USED),
        ("outcome", rule.outcome is Need.REQUIRED, rule.outcome is not Need.NOT_USED),
        ("ref", rule.ref is Need.REQUIRED, rule.ref is not Need.NOT_USED),
        ("mode", rule.mode is Need.REQUIRED, rule.mode is not Need.NOT_USED),
    )
    problems: list[tuple[str, str]] = []
    for name, required, allowed in rules:
        present = getattr(item, name) is not None
        if required and not present:
            problems.append((name, f"required for kind '{item.kind}'"))
        elif present and not allowed:
            problems.append((name, f"not used by kind '{item.kind}'"))
    return problems


_READABLE = {
    "extra_forbidden": "unknown field (not part of interaction/v1)",
    "missing": "required",
    "timezone_aware": "must carry a timezone offset (e.g. Z or +02:00)",
    "string_unicode": "not valid Unicode (a lone surrogate)",
}


def _describe(error: Any) -> tuple[str, str]:
    """A pydantic error as `field: reason`; the path and the message are made safe to show."""
    steps = [segment(step) for step in error["loc"]]
    kind = error["type"]
    if kind == "json_value":
        steps.append(error["ctx"]["at"])
    if not steps:
        return ("json", "must be a JSON object")
    message = _READABLE.get(kind, error["msg"])
    if error["loc"] and error["loc"][-1] == "[key]":
        steps.pop()
        message = "object keys must be strings"
    if kind == "string_pattern_mismatch" and error["ctx"]["pattern"] == _PRINTABLE:
        found = control_character(str(error["input"])) or "contains a control character"
        message = f"{found}; only printable characters are allowed"
    return (".".join(steps), readable(message.removeprefix("Value error, ")))


def _size(raw: str | bytes) -> int:
    if isinstance(raw, bytes) or raw.isascii():
        return len(raw)
    return len(raw.encode("utf-8", "surrogatepass"))


def parse_interaction(
    raw: str | bytes | dict[str, Any],
    *,
    received_at: datetime | None = None,
    limits: IntakeLimits = DEFAULT_LIMITS,
) -> Interaction:
    """Validate one message (JSON text or an already decoded object) against interaction/v1.

    `received_at` is the recording clock (default: now, in UTC), used only here at
    intake to refuse dates too far in the future; folds never read a clock. Text larger
    than `limits.max_message_bytes` is refused before it is parsed.
    """
    if received_at is None:
        received_at = datetime.now(UTC)
    elif received_at.utcoffset() is None:
        raise ValueError("received_at must carry a timezone")
    try:
        return _validate(raw, received_at, limits)
    except ContractViolation:
        raise
    except RecursionError:
        raise ContractViolation("json", "nested too deeply") from None
    except Exception as error:
        raise ContractViolation("json", f"cannot be validated ({type(error).__name__})") from error


def _validate(
    raw: str | bytes | dict[str, Any], received_at: datetime, limits: IntakeLimits
) -> Interaction:
    """The shape first; then, once it is right, the recording clock and the kind rules."""
    if isinstance(raw, dict):
        obj = raw
    else:
        size = _size(raw)
        if size > limits.max_message_bytes:
            limit = limits.max_message_bytes
            raise ContractViolation("message", f"is {size} bytes; the limit is {limit}")
        obj = decode_object(raw)
    try:
        item = Interaction.model_validate(obj)
    except ValidationError as error:
        raise ContractViolation.of([_describe(e) for e in error.errors()]) from None
    problems = _kind_problems(item)
    late = _too_late(item, received_at, limits.max_future_skew)
    if late is not None:
        problems.insert(0, ("occurred_at", late))
    if problems:
        raise ContractViolation.of(problems)
    return item
