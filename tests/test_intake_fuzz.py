"""Property: whatever a producer sends, each line is recorded or refused with one line.

Hypothesis mutates lines of the conformance stories (characters dropped or inserted,
control and invisible characters, JSON tokens, fields replaced by arbitrary JSON,
duplicated keys, other currencies) and feeds them through `ingest_lines`, as
`relledger ingest` does. Whatever it finds, the ledger must stay usable: every line
counted once, every refusal one short escaped line, untouched lines recorded unless a
mutation changed their relationship, what is recorded is what was sent (attributes
verbatim), nothing the contract let in stops the projector
(no quarantine), and every chain verifies.
"""

from __future__ import annotations

import json
import tempfile
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from conformance import DATA, RECORDED_AT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.jsonl import LineRejection, ingest_lines
from domain.stored import UnreadableRecord
from projections.audit import verify_ledger
from projections.projector import Projector
from projections.view import open_view
from service.policies import load_policy
from service.schema import migrate
from service.store import open_ledger

STORIES = (DATA / "events.jsonl").read_text().splitlines()[:80]
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = RECORDED_AT + timedelta(days=1)
UNSHOWABLE = {"Cc", "Cf", "Zl", "Zp", "Cs"}
BECAUSE_OF_ANOTHER_LINE = ("parties:", "currency:", "event_id: already recorded")

dates = st.sampled_from(
    ["0001-01-01T00:00:00Z", "1899-12-31T23:59:59Z", "9999-12-31T23:59:59Z", "2029-05-03T12:00:00Z"]
)
json_values = st.recursive(
    dates
    | st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
tokens = st.sampled_from(
    ['"', "{", "}", ",", ":", "1e400", "NaN", "-Infinity", "9" * 30, "\\u0000"]
)
odd_characters = st.characters(codec="utf-8") | st.sampled_from(
    ["\x00", "\x1b", "\u202e", "\u200b", "\x85"]
)


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    kind = draw(
        st.sampled_from(["drop", "insert", "token", "field", "duplicate", "currency", "date"])
    )
    at = draw(st.integers(min_value=0, max_value=len(text) - 1))
    if kind == "drop":
        return text[:at] + text[at + 1 :]
    if kind == "insert":
        return text[:at] + draw(odd_characters) + text[at:]
    if kind == "token":
        return text[:at] + draw(tokens) + text[at:]
    item: dict[str, Any] = json.loads(text)
    if kind == "date":
        return json.dumps({**item, "occurred_at": draw(dates)})
    key = draw(st.sampled_from(sorted(item)))
    if kind == "field":
        item[key] = draw(json_values)
        return json.dumps(item, allow_nan=True)
    if kind == "duplicate":
        return text[:-1] + f", {json.dumps(key)}: {json.dumps(draw(json_values), allow_nan=True)}}}"
    return text.replace('"EUR"', json.dumps(draw(st.text(min_size=1, max_size=4))))


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    chosen = draw(st.sets(st.integers(min_value=0, max_value=len(STORIES) - 1), max_size=12))
    lines = [draw(mutated(text)) if n in chosen else text for n, text in enumerate(STORIES)]
    return STORIES, lines


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_mutated_stories_are_each_recorded_or_refused_with_one_line(
    stream: tuple[list[str], list[str]],
) -> None:
    original, lines = stream
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'fuzz.db'}"
        migrate(url)
        ledger = open_ledger(url)
        refused: dict[int, str] = {}

        def note(rejection: LineRejection) -> None:
            refused[rejection.line] = str(rejection)

        encoded = [text.encode("utf-8", "surrogatepass") + b"\n" for text in lines]
        report = ingest_lines(
            ledger, encoded, batch_size=16, clock=lambda: RECORDED_AT, on_rejection=note
        )
        assert report.recorded + report.duplicates + report.rejected == sum(
            1 for text in lines if text.strip()
        )
        assert len(refused) == report.rejected
        for text in refused.values():
            assert "\n" not in text and "\x1b" not in text and "\x00" not in text
            assert len(text) < 1000
        for number, text in enumerate(lines, start=1):
            if text == original[number - 1] and number in refused:
                assert any(reason in refused[number] for reason in BECAUSE_OF_ANOTHER_LINE)

        first_accepted: dict[tuple[str, str], dict[str, Any]] = {}
        for number, text in enumerate(lines, start=1):
            if number not in refused and text.strip():
                sent = json.loads(text)
                first_accepted.setdefault((sent["source"], sent["event_id"]), sent)
        for stored in ledger.scan():
            assert not isinstance(stored, UnreadableRecord)
            record = stored.record
            sent = first_accepted[(record["source"], record["event_id"])]
            assert record.get("attributes") == sent.get("attributes")  # kept verbatim
            assert EARLIEST <= datetime.fromisoformat(record["occurred_at"]) <= LATEST
            for name in ("event_id", "source", "relationship_id"):
                assert all(unicodedata.category(c) not in UNSHOWABLE for c in record[name])

        view = open_view(ledger)
        view.ensure_live(load_policy())
        caught_up = Projector(ledger, view).catch_up()
        assert caught_up.lag == 0 and caught_up.quarantined == []
        assert verify_ledger(ledger).intact
        ledger.close()
