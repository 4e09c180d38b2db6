"""The input contract `interaction/v1` (DESIGN.md sections 3 and 4).

Every refusal is a `ContractViolation` naming the field a producer must fix; a
message that breaks several rules lists them all in `.problems`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from domain import contract
from domain.contract import IntakeLimits, Interaction, parse_interaction
from domain.errors import ContractViolation, InteractionRejected

DATA = Path(__file__).resolve().parent / "data"


def purchase(**changes: Any) -> dict[str, Any]:
    """A valid purchase; `changes` override fields, a value of None removes one."""
    message: dict[str, Any] = {
        "event_id": "evt-1",
        "source": "billing",
        "relationship_id": "acme/globex",
        "occurred_at": "2025-03-01T09:30:00Z",
        "kind": "purchase",
        "actor": "customer",
        "amount": "100.00",
        "currency": "EUR",
        "outcome": "met",
    }
    message.update(changes)
    return {name: value for name, value in message.items() if value is not None}


def of_kind(kind: str, **fields: Any) -> dict[str, Any]:
    """A valid-looking message of any kind with only the common fields, plus `fields`."""
    return {
        "event_id": "evt-2",
        "source": "crm",
        "relationship_id": "acme/globex",
        "occurred_at": "2025-03-01T09:30:00+02:00",
        "kind": kind,
        "actor": "supplier",
        **fields,
    }


def violation(raw: str | bytes | dict[str, Any]) -> ContractViolation:
    with pytest.raises(ContractViolation) as caught:
        parse_interaction(raw)
    return caught.value


def fields_of(error: ContractViolation) -> list[str]:
    return [field for field, _ in error.problems]


# --- tests/data/invalid.jsonl ----------------------------------------------------------

# (line number, event id or None, the field the rejection must name)
INVALID_LINES = [
    (1, "bad-1", "occurred_at"),  # naive timestamp
    (2, "bad-2", "kind"),  # "hug" is not in the vocabulary
    (3, "bad-3", "amount"),  # a purchase without an amount
    (4, None, "json"),  # "{not json"
    (5, "bad-4", "amount"),  # "-5.00": amounts are > 0
    (6, "bad-5", "colour"),  # unknown field
    (9, "bad-7", "actor"),  # "bystander"
    (11, "bad-9", "outcome"),  # "meh"
    (12, "bad-10", "relationship_id"),  # missing
]


def _invalid_lines() -> dict[int, bytes]:
    with (DATA / "invalid.jsonl").open("rb") as handle:
        return dict(enumerate(handle, start=1))


def test_invalid_file_has_the_lines_this_test_knows() -> None:
    lines = _invalid_lines()
    blank = {number for number, line in lines.items() if not line.strip()}
    assert blank == {7}
    assert set(lines) - blank == {number for number, _, _ in INVALID_LINES} | {8, 10}


@pytest.mark.parametrize(
    ("number", "event_id", "field"),
    INVALID_LINES,
    ids=[f"line{number}-{field}" for number, _, field in INVALID_LINES],
)
def test_invalid_line_names_the_field(number: int, event_id: str | None, field: str) -> None:
    line = _invalid_lines()[number]
    if event_id is not None:
        assert json.loads(line)["event_id"] == event_id
    error = violation(line)
    assert error.field == field
    assert error.reason
    assert str(error).startswith(f"{field}: ")


@pytest.mark.parametrize("number", [8, 10])
def test_lines_contradicting_a_relationship_still_fit_the_contract(number: int) -> None:
    """bad-6 (another currency) and bad-8 (other parties) are refused by the ledger, not here."""
    item = parse_interaction(_invalid_lines()[number])
    assert item.event_id in {"bad-6", "bad-8"}


def test_a_violation_is_an_interaction_rejection() -> None:
    error = violation(purchase(actor="bystander"))
    assert isinstance(error, InteractionRejected)
    assert (error.field, error.reason) == error.problems[0]


# --- shapes -----------------------------------------------------------------------------


def test_a_valid_purchase_parses_from_text_bytes_and_dict() -> None:
    message = purchase()
    from_dict = parse_interaction(message)
    assert parse_interaction(json.dumps(message)) == from_dict
    assert parse_interaction(json.dumps(message).encode()) == from_dict
    assert isinstance(from_dict, Interaction)
    assert from_dict.key == ("billing", "evt-1")


@pytest.mark.parametrize(
    "raw", ["", "[]", '"purchase"', "42", "null", b"\xff\xfe", '{"event_id": "x",}']
)
def test_not_a_json_object_is_named_json(raw: str | bytes) -> None:
    assert violation(raw).field == "json"


@pytest.mark.parametrize(
    "occurred_at",
    ["2025-03-01T09:30:00", "2025-03-01 09:30:00", "2025-03-01"],
)
def test_naive_timestamps_are_rejected(occurred_at: str) -> None:
    error = violation(purchase(occurred_at=occurred_at))
    assert error.field == "occurred_at"
    assert "timezone" in error.reason


@pytest.mark.parametrize("occurred_at", [1740821400, 1740821400.5])
def test_epoch_numbers_are_not_timestamps(occurred_at: float) -> None:
    assert violation(purchase(occurred_at=occurred_at)).field == "occurred_at"


@pytest.mark.parametrize("occurred_at", ["1740821400", "1740821400.5"])
def test_epoch_seconds_as_text_are_not_iso_8601(occurred_at: str) -> None:
    """DESIGN.md section 3: occurred_at is ISO 8601 with a timezone. Seconds since the
    epoch are neither, whether sent as a JSON number or as a string."""
    assert violation(purchase(occurred_at=occurred_at)).field == "occurred_at"


@pytest.mark.parametrize(
    "occurred_at", ["2025-03-01T09:30:00Z", "2025-03-01T11:30:00+02:00", "2025-03-01T04:30-05:00"]
)
def test_timestamps_with_an_offset_are_accepted(occurred_at: str) -> None:
    item = parse_interaction(purchase(occurred_at=occurred_at))
    assert item.occurred_at.utcoffset() is not None


def test_the_offset_is_kept_not_converted() -> None:
    item = parse_interaction(purchase(occurred_at="2025-03-01T11:30:00+02:00"))
    assert item.canonical()["occurred_at"] == "2025-03-01T11:30:00+02:00"


@pytest.mark.parametrize("field", ["amount", "perceived_value"])
@pytest.mark.parametrize("number", [100, 100.5, 0.1])
def test_json_numbers_are_not_money(field: str, number: float) -> None:
    raw = json.dumps(purchase(**{field: number}))
    error = violation(raw)
    assert error.field == field
    assert "decimal string" in error.reason


@pytest.mark.parametrize("amount", ["abc", "NaN", "Infinity", "-Infinity", "", "1,50"])
def test_amount_must_be_a_finite_decimal(amount: str) -> None:
    assert violation(purchase(amount=amount)).field == "amount"


@pytest.mark.parametrize("amount", ["0", "0.00", "-5.00"])
def test_amount_must_be_positive(amount: str) -> None:
    assert violation(purchase(amount=amount)).field == "amount"


def test_perceived_value_may_be_zero_but_not_negative() -> None:
    assert parse_interaction(purchase(perceived_value="0")).perceived_value == Decimal("0")
    assert violation(purchase(perceived_value="-0.01")).field == "perceived_value"


@pytest.mark.parametrize("currency", ["eur", "EURO", "E1R", ""])
def test_currency_is_a_three_letter_code(currency: str) -> None:
    assert violation(purchase(currency=currency)).field == "currency"


@pytest.mark.parametrize("field", ["colour", "Amount", "occured_at", "late"])
def test_unknown_fields_are_an_error(field: str) -> None:
    error = violation(purchase(**{field: "x"}))
    assert error.field == field
    assert "unknown field" in error.reason


def test_unknown_field_inside_parties_is_an_error() -> None:
    parties = {"supplier": "acme", "customer": "globex", "broker": "x"}
    assert violation(purchase(parties=parties)).field == "parties.broker"


def test_parties_need_both_sides() -> None:
    assert violation(purchase(parties={"supplier": "acme"})).field == "parties.customer"


@pytest.mark.parametrize(
    "field", ["event_id", "source", "relationship_id", "occurred_at", "kind", "actor"]
)
def test_required_fields(field: str) -> None:
    error = violation(purchase(**{field: None}))
    assert error.field == field
    assert error.reason == "required"


@pytest.mark.parametrize(
    ("field", "too_long"),
    [("event_id", 201), ("source", 101), ("relationship_id", 201), ("note", 2001)],
)
def test_string_lengths(field: str, too_long: int) -> None:
    assert parse_interaction(purchase(**{field: "x" * (too_long - 1)}))
    assert violation(purchase(**{field: "x" * too_long})).field == field
    if field != "note":
        assert violation(purchase(**{field: ""})).field == field


# --- attributes -------------------------------------------------------------------------


def _attributes_of_size(size: int) -> dict[str, Any]:
    overhead = len(orjson.dumps({"a": ""}))  # {"a":""} is 8 bytes
    attributes = {"a": "x" * (size - overhead)}
    assert len(orjson.dumps(attributes)) == size
    return attributes


def test_attributes_up_to_16_kib_are_accepted() -> None:
    attributes = _attributes_of_size(16 * 1024)
    assert parse_interaction(purchase(attributes=attributes)).attributes == attributes


def test_attributes_over_16_kib_are_rejected() -> None:
    error = violation(purchase(attributes=_attributes_of_size(16 * 1024 + 1)))
    assert error.field == "attributes"
    assert "16384" in error.reason


def test_attributes_must_be_an_object() -> None:
    assert violation(purchase(attributes=["a", "b"])).field == "attributes"


def test_attributes_are_kept_verbatim() -> None:
    attributes = {"invoice": "F-17", "lines": [1, 2.5, {"vat": None, "ok": True}], "ü": "ß"}
    item = parse_interaction(json.dumps(purchase(attributes=attributes)))
    assert item.attributes == attributes
    assert item.canonical()["attributes"] == attributes


# --- what depends on the kind -----------------------------------------------------------


@pytest.mark.parametrize("kind", ["trial", "purchase", "contribution", "reward"])
def test_amount_required(kind: str) -> None:
    message = of_kind(kind, currency="EUR")
    if kind in {"trial", "purchase"}:
        message["outcome"] = "met"
    error = violation(message)
    assert error.problems == [("amount", f"required for kind '{kind}'")]


def test_currency_required_with_an_amount() -> None:
    assert violation(purchase(currency=None)).problems == [
        ("currency", "required for kind 'purchase'")
    ]


@pytest.mark.parametrize("kind", ["contact", "service", "agreement", "breach"])
def test_amount_and_currency_not_used_by_other_kinds(kind: str) -> None:
    message = of_kind(kind, amount="10.00", currency="EUR")
    if kind == "service":
        message["outcome"] = "met"
    assert fields_of(violation(message)) == ["amount", "currency"]


def test_contribution_and_reward_take_an_amount_but_no_outcome_or_perceived_value() -> None:
    assert parse_interaction(of_kind("contribution", amount="5", currency="EUR")).amount == 5
    assert parse_interaction(of_kind("reward", amount="5", currency="EUR")).amount == 5
    message = of_kind("reward", amount="5", currency="EUR", outcome="met", perceived_value="1")
    assert fields_of(violation(message)) == ["perceived_value", "outcome"]


@pytest.mark.parametrize("kind", ["trial", "purchase", "service"])
def test_outcome_required(kind: str) -> None:
    message = of_kind(kind)
    if kind != "service":
        message.update(amount="10.00", currency="EUR")
    assert violation(message).problems == [("outcome", f"required for kind '{kind}'")]


def test_service_takes_an_outcome_and_nothing_else() -> None:
    item = parse_interaction(of_kind("service", outcome="failed"))
    assert item.outcome == "failed" and item.amount is None


@pytest.mark.parametrize("kind", ["contact", "communication", "referral"])
def test_outcome_not_used_by_other_kinds(kind: str) -> None:
    assert violation(of_kind(kind, outcome="met")).problems == [
        ("outcome", f"not used by kind '{kind}'")
    ]


def test_perceived_value_only_on_transactions() -> None:
    assert parse_interaction(purchase(perceived_value="120.00")).perceived_value == Decimal(
        "120.00"
    )
    message = of_kind("service", outcome="met", perceived_value="1")
    assert fields_of(violation(message)) == ["perceived_value"]


def test_termination_needs_a_mode() -> None:
    assert violation(of_kind("termination")).problems == [
        ("mode", "required for kind 'termination'")
    ]
    for mode in ("unilateral", "bilateral"):
        assert parse_interaction(of_kind("termination", mode=mode)).mode == mode
    assert violation(of_kind("termination", mode="amicable")).field == "mode"


def test_mode_not_used_by_other_kinds() -> None:
    assert fields_of(violation(purchase(mode="unilateral"))) == ["mode"]
    assert fields_of(violation(of_kind("reactivation", mode="bilateral"))) == ["mode"]


@pytest.mark.parametrize("kind", ["promise_kept", "promise_broken"])
def test_promise_resolutions_need_a_ref(kind: str) -> None:
    assert violation(of_kind(kind)).problems == [("ref", f"required for kind '{kind}'")]
    assert parse_interaction(of_kind(kind, ref="evt-0")).ref == "evt-0"


def test_resolution_may_name_a_ref() -> None:
    assert parse_interaction(of_kind("resolution")).ref is None
    assert parse_interaction(of_kind("resolution", ref="evt-0")).ref == "evt-0"


@pytest.mark.parametrize("kind", ["promise", "purchase", "contact"])
def test_ref_not_used_by_other_kinds(kind: str) -> None:
    message = purchase(ref="evt-0") if kind == "purchase" else of_kind(kind, ref="evt-0")
    assert fields_of(violation(message)) == ["ref"]


@pytest.mark.parametrize(
    "kind",
    [
        "contact",
        "communication",
        "agreement",
        "promise",
        "disagreement",
        "resolution",
        "collaboration",
        "referral",
        "account_update",
        "invitation",
        "breach",
        "reactivation",
    ],
)
def test_kinds_that_need_nothing_more(kind: str) -> None:
    assert parse_interaction(of_kind(kind, note="ok")).kind == kind


# --- several problems at once -----------------------------------------------------------


def test_several_shape_problems_reported_together() -> None:
    message = purchase(actor="bystander", outcome="meh", colour="blue", event_id=None)
    error = violation(message)
    assert set(fields_of(error)) == {"event_id", "actor", "outcome", "colour"}
    for field in ("event_id", "actor", "outcome", "colour"):
        assert f"{field}: " in str(error)


def test_several_kind_problems_reported_together() -> None:
    message = purchase(amount=None, outcome=None, mode="bilateral", ref="evt-0")
    error = violation(message)
    assert error.problems == [
        ("amount", "required for kind 'purchase'"),
        ("outcome", "required for kind 'purchase'"),
        ("ref", "not used by kind 'purchase'"),
        ("mode", "not used by kind 'purchase'"),
    ]
    assert (error.field, error.reason) == error.problems[0]
    assert str(error) == "; ".join(f"{field}: {reason}" for field, reason in error.problems)


# --- money stays exact ------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount", ["100.00", "100", "0.10", "123456789012345.123456", "123456789012345678.123456"]
)
def test_decimal_preserved_exactly(amount: str) -> None:
    item = parse_interaction(json.dumps(purchase(amount=amount, perceived_value=amount)))
    assert isinstance(item.amount, Decimal)
    assert item.amount == Decimal(amount)
    assert str(item.amount) == amount  # same digits, same exponent
    assert item.canonical()["amount"] == amount
    assert item.canonical()["perceived_value"] == amount


@pytest.mark.parametrize(
    "amount",
    ["1E+2", "1_000", " 10.00 ", "\u0661\u0660", "1e400", "1234567890123456789.00", "1.1234567"],
)
def test_loose_or_oversized_decimals_are_refused(amount: str) -> None:
    """Plain ASCII decimals only, small enough that every sum of them stays exact."""
    with pytest.raises(ContractViolation) as caught:
        parse_interaction(purchase(amount=amount))
    assert caught.value.field == "amount"
    assert "plain decimal" in caught.value.reason


def test_hundred_stays_hundred_point_zero_zero() -> None:
    item = parse_interaction(purchase(amount="100.00"))
    assert repr(item.amount) == "Decimal('100.00')"
    assert item.amount.as_tuple() == Decimal("100.00").as_tuple()
    assert item.canonical()["amount"] == "100.00"


def test_canonical_leaves_absent_fields_out_and_round_trips() -> None:
    item = parse_interaction(purchase(note="first order"))
    canonical = item.canonical()
    assert canonical == {
        "event_id": "evt-1",
        "source": "billing",
        "relationship_id": "acme/globex",
        "occurred_at": "2025-03-01T09:30:00Z",
        "kind": "purchase",
        "actor": "customer",
        "amount": "100.00",
        "currency": "EUR",
        "outcome": "met",
        "note": "first order",
    }
    assert parse_interaction(canonical) == item
    assert parse_interaction(orjson.dumps(canonical)) == item


def test_interactions_are_immutable() -> None:
    item = parse_interaction(purchase())
    with pytest.raises(ValueError):
        item.amount = Decimal("1")  # type: ignore[misc]


# --- what cannot be folded, stored or shown ---------------------------------------------

RECEIVED = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
IDENTIFIERS = [
    "event_id",
    "source",
    "relationship_id",
    "ref",
    "parties.supplier",
    "parties.customer",
]


def _with_identifier(field: str, value: str) -> dict[str, Any]:
    if field == "ref":
        return of_kind("promise_kept", ref=value)
    if field.startswith("parties."):
        parties = {"supplier": "acme", "customer": "globex", field.removeprefix("parties."): value}
        return purchase(parties=parties)
    return purchase(**{field: value})


@pytest.mark.parametrize("field", IDENTIFIERS)
@pytest.mark.parametrize(
    "char",
    ["\x00", "\x1b", "\x7f", "\x85", "\u202e", "\u200b", "\ufeff", "\u2028", "\u2029", "\n"],
    ids=["NUL", "ESC", "DEL", "NEL", "RLO", "ZWSP", "BOM", "LS", "PS", "LF"],
)
def test_identifiers_refuse_control_and_format_characters(field: str, char: str) -> None:
    error = violation(_with_identifier(field, f"evt{char}1"))
    assert error.field == field
    assert f"U+{ord(char):04X}" in error.reason
    assert "printable" in error.reason


@pytest.mark.parametrize("field", IDENTIFIERS)
def test_identifiers_keep_printable_unicode_and_their_lengths(field: str) -> None:
    assert parse_interaction(_with_identifier(field, "Müller & Söhne/東京 #7"))
    assert parse_interaction(_with_identifier(field, "x" * 100))
    assert violation(_with_identifier(field, "")).field == field
    too_long = 101 if field == "source" else 201
    assert violation(_with_identifier(field, "x" * too_long)).field == field


def test_a_lone_surrogate_is_refused_in_identifiers_and_notes() -> None:
    raw = json.dumps(purchase(event_id="evt-\ud800", note="a\udfffb"))
    assert fields_of(violation(raw)) == ["event_id", "note"]


def test_notes_keep_newlines_tabs_and_the_joiners_text_needs() -> None:
    note = "line one\n\tline two 👩\u200d💻 \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
    assert parse_interaction(purchase(note=note)).note == note


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\r", "\x7f", "\x9b", "\u202e", "\u2066"])
def test_notes_refuse_other_control_characters(char: str) -> None:
    error = violation(purchase(note=f"fine{char}[2J"))
    assert error.field == "note"
    assert f"U+{ord(char):04X}" in error.reason


def _at(occurred_at: str, **limits: Any) -> ContractViolation:
    with pytest.raises(ContractViolation) as caught:
        parse_interaction(
            purchase(occurred_at=occurred_at), received_at=RECEIVED, limits=IntakeLimits(**limits)
        )
    return caught.value


def test_year_one_is_refused() -> None:
    """Recorded once, it crashed every later fold with an OverflowError."""
    error = _at("0001-01-01T00:00:00Z")
    assert str(error) == "occurred_at: 0001-01-01T00:00:00+00:00 is before 1900-01-01"


def test_year_9999_is_refused() -> None:
    """Recorded once, it froze its relationship's clock for good."""
    error = _at("9999-12-31T00:00:00Z")
    assert str(error) == (
        "occurred_at: 9999-12-31T00:00:00+00:00 is more than 1 day after the recording "
        "time 2026-11-25T12:00:00+00:00"
    )


@pytest.mark.parametrize(
    ("occurred_at", "accepted"),
    [
        ("1899-12-31T23:59:59Z", False),
        ("1900-01-01T00:30:00+01:00", False),
        ("1900-01-01T00:00:00Z", True),
        ("2026-11-26T12:00:00Z", True),
        ("2026-11-26T13:00:00+01:00", True),
        ("2026-11-26T12:00:01Z", False),
    ],
)
def test_occurred_at_bounds(occurred_at: str, accepted: bool) -> None:
    message = purchase(occurred_at=occurred_at)
    if accepted:
        assert parse_interaction(message, received_at=RECEIVED)
    else:
        assert _at(occurred_at).field == "occurred_at"


def test_the_future_skew_is_configurable() -> None:
    error = _at("2026-11-25T15:00:00Z", max_future_skew=timedelta(hours=2))
    assert "more than 2 hours after" in error.reason
    limits = IntakeLimits(max_future_skew=timedelta(days=3650))
    assert parse_interaction(purchase(occurred_at="2029-05-01T09:25:00Z"), limits=limits)


def test_received_at_defaults_to_now() -> None:
    tomorrow = datetime.now(UTC) + timedelta(hours=23)
    assert parse_interaction(purchase(occurred_at=tomorrow.isoformat()))
    assert violation(purchase(occurred_at=(tomorrow + timedelta(days=2)).isoformat()))


def test_a_naive_recording_clock_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone"):
        parse_interaction(purchase(), received_at=datetime(2026, 11, 25))


def test_the_future_is_reported_with_the_kind_rules() -> None:
    message = purchase(occurred_at="2027-01-01T00:00:00Z", outcome=None)
    with pytest.raises(ContractViolation) as caught:
        parse_interaction(message, received_at=RECEIVED)
    assert fields_of(caught.value) == ["occurred_at", "outcome"]


def test_every_conformance_event_fits_a_clock_after_the_last_one() -> None:
    last = datetime(2029, 5, 1, 9, 25, tzinfo=UTC)
    with (DATA / "events.jsonl").open("rb") as handle:
        items = [parse_interaction(line, received_at=last) for line in handle if line.strip()]
    assert max(item.occurred_at for item in items) == last


def test_an_unknown_currency_code_is_refused() -> None:
    error = violation(purchase(currency="ZZZ"))
    assert str(error) == "currency: 'ZZZ' is not an ISO 4217 currency code"


@pytest.mark.parametrize("currency", ["XXX", "XTS", "XAU", "XDR"])
def test_codes_without_a_minor_unit_are_not_money(currency: str) -> None:
    error = violation(purchase(currency=currency))
    assert error.field == "currency"
    assert "no minor unit" in error.reason


@pytest.mark.parametrize("currency", ["EUR", "USD", "JPY", "BHD", "CHF"])
def test_iso_currencies_are_accepted(currency: str) -> None:
    assert parse_interaction(purchase(currency=currency)).currency == currency


def test_eighteen_integer_digits_and_six_decimals_is_the_bound() -> None:
    assert parse_interaction(purchase(amount="999999999999999999.999999"))
    for amount in ("1000000000000000000", "1.0000001"):
        error = violation(purchase(amount=amount))
        assert error.field == "amount"
        assert "at most 18 digits before it and 6 after" in error.reason


def _attributes_text(attributes: str) -> str:
    return json.dumps(purchase())[:-1] + f', "attributes": {attributes}}}'


@pytest.mark.parametrize(
    ("attributes", "field", "reason"),
    [
        ('{"n": 18446744073709551616}', "attributes.n", "integer out of 64-bit range"),
        ('{"n": 9223372036854775808}', "attributes.n", "integer out of 64-bit range"),
        ('{"n": -9223372036854775809}', "attributes.n", "integer out of 64-bit range"),
        ('{"n": 1' + "0" * 5000 + "}", "attributes.n", "integer out of 64-bit range"),
        ('{"x": NaN}', "attributes.x", "NaN is not a JSON number"),
        ('{"x": [1, Infinity]}', "attributes.x.1", "Infinity is not a JSON number"),
        ('{"x": {"y": -Infinity}}', "attributes.x.y", "-Infinity is not a JSON number"),
        ('{"x": 1e400}', "attributes.x", "number out of range (Infinity is not a JSON number)"),
        ('{"x": "\\ud800"}', "attributes.x", "not valid Unicode (a lone surrogate)"),
    ],
)
def test_attributes_are_strict_json(attributes: str, field: str, reason: str) -> None:
    error = violation(_attributes_text(attributes))
    assert (error.field, error.reason) == (field, reason)


def test_attributes_keep_64_bit_integers_and_finite_floats() -> None:
    attributes = {"min": -(2**63), "max": 2**63 - 1, "tiny": 5e-324, "big": 1.7e308}
    assert parse_interaction(_attributes_text(json.dumps(attributes))).attributes == attributes


def test_attributes_nest_at_most_32_levels() -> None:
    assert parse_interaction(_attributes_text('{"a": ' + "[" * 31 + "]" * 31 + "}"))
    error = violation(_attributes_text('{"a": ' + "[" * 32 + "]" * 32 + "}"))
    assert error.field == "attributes.a" + ".0" * 31
    assert error.reason == "nested deeper than 32 levels"


def test_nesting_too_deep_for_the_decoder_is_a_violation() -> None:
    error = violation('{"note": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert error.field == "json"


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        ({1: "x"}, "object keys must be strings"),
        ({"when": datetime(2025, 1, 1)}, "a datetime is not a JSON value"),
        ({"x": float("nan")}, "NaN is not a JSON number"),
        ({"x": 2**64}, "integer out of 64-bit range"),
    ],
)
def test_decoded_attributes_are_strict_json_too(attributes: dict[Any, Any], reason: str) -> None:
    error = violation(purchase(attributes=attributes))
    assert error.field.startswith("attributes")
    assert error.reason.endswith(reason)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('{"amount": "1.00", "amount": "100.00"}', "amount"),
        ('{"parties": {"supplier": "a", "supplier": "b", "customer": "c"}}', "parties.supplier"),
        ('{"attributes": {"a": [{"k": 1, "k": 2}]}}', "attributes.a.0.k"),
    ],
)
def test_duplicate_keys_are_refused(text: str, field: str) -> None:
    message = json.dumps(purchase(amount=None))[:-1] + ", " + text[1:]
    error = violation(message)
    assert error.problems == [(field, "duplicate key")]


def test_every_duplicate_key_is_named() -> None:
    error = violation('{"kind": "contact", "kind": "purchase", "note": "a", "note": "b"}')
    assert error.problems == [("kind", "duplicate key"), ("note", "duplicate key")]


def test_a_message_over_the_byte_limit_is_refused_before_parsing() -> None:
    huge = "{" + " " * (1024 * 1024) + "}"
    error = violation(huge)
    assert str(error) == "message: is 1048578 bytes; the limit is 1048576"
    small = IntakeLimits(max_message_bytes=100)
    text = json.dumps(purchase(note="é" * 60), ensure_ascii=False)
    for raw in (text, text.encode()):
        with pytest.raises(ContractViolation) as caught:
            parse_interaction(raw, limits=small)
        assert caught.value.reason == f"is {len(text.encode())} bytes; the limit is 100"


def test_a_message_at_the_byte_limit_is_parsed() -> None:
    raw = orjson.dumps(purchase())
    assert parse_interaction(raw, limits=IntakeLimits(max_message_bytes=len(raw)))


def test_reasons_quote_little_and_escape_control_characters() -> None:
    error = violation(purchase(amount="\x1b[31m" + "9" * 10_000_000))
    assert error.field == "amount"
    assert len(str(error)) < 400
    assert "\x1b" not in str(error)
    assert "\\x1b[31m" in error.reason
    assert "(10000005 characters)" in error.reason


def test_unknown_field_names_are_quoted_too() -> None:
    name = "\x1b]0;pwned\x07" + "x" * 1000
    error = violation(purchase(**{name: 1}))
    assert len(error.field) < 100
    assert error.field.isprintable()
    assert error.reason == "unknown field (not part of interaction/v1)"


@pytest.mark.parametrize("currency", ["\x1b[2J", "\u202eRUE", "E" * 1000])
def test_odd_currencies_are_quoted(currency: str) -> None:
    error = violation(purchase(currency=currency))
    assert error.field == "currency"
    assert str(error).isprintable()
    assert len(str(error)) < 250


def test_attributes_that_used_to_escape_as_a_traceback() -> None:
    """A 65-bit integer once left validation as orjson's TypeError, not a violation."""
    error = violation(purchase(attributes={"n": 18446744073709551616}))
    assert str(error) == "attributes.n: integer out of 64-bit range"


def test_any_unforeseen_error_becomes_a_violation(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(item: Interaction) -> list[tuple[str, str]]:
        raise KeyError("boom")

    monkeypatch.setattr(contract, "_kind_problems", broken)
    error = violation(purchase())
    assert (error.field, error.reason) == ("json", "cannot be validated (KeyError)")


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "1E+2", "1E+18", "0.0000001"])
def test_decimal_objects_meet_the_same_bound(amount: str) -> None:
    error = violation(purchase(amount=Decimal(amount)))
    assert error.field == "amount"
    assert "plain decimal" in error.reason
    assert parse_interaction(purchase(amount=Decimal("999999999999999999.999999")))
