"""The conformance stories of `tests/data`, and the recording clock they are ingested at.

The stories run to 2029-05-01, and intake refuses an `occurred_at` more than a day
after the recording time: tests record them as of `RECORDED_AT`, just after their last
event (in process), or with `FAR_SKEW` (through the CLI), exactly as an operator
replaying such a history would.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from consumers.jsonl import IngestReport, ingest_lines
from domain.ledger import RelationshipLedger

DATA = Path(__file__).parent / "data"
EXPECTED: dict[str, dict[str, Any]] = json.loads((DATA / "expected.json").read_text())
STORY_EVENTS = sum(story["events"] for story in EXPECTED.values())
RECORDED_AT = datetime(2029, 5, 2, tzinfo=UTC)
FAR_SKEW = ["--max-future-skew", "3650"]


def ingest_command(store_url: str, *arguments: str) -> list[str]:
    """`relledger ingest` of files of these stories, as a fresh process would run it."""
    return [sys.executable, "-m", "relledger", "--db", store_url, "ingest", *FAR_SKEW, *arguments]


def ingest_file(
    ledger: RelationshipLedger, name: str = "events.jsonl", **options: Any
) -> IngestReport:
    """Ingest one file of `tests/data` as of `RECORDED_AT`."""
    with (DATA / name).open("rb") as handle:
        return ingest_lines(ledger, handle, clock=lambda: RECORDED_AT, **options)
