"""`relledger export`: every stored interaction, in log order, as the JSONL it came in as.

The export is the backup and the way to move a ledger between backends (SQLite to
PostgreSQL and back): `relledger ingest` of the file into an empty store records the
same interactions, in the same order within each relationship, so every hash chain
comes out the same (a chain links each interaction's canonical JSON to the one before
it, in version order; nothing of the recording enters it), every `late` flag too (it
says whether an interaction occurred before an earlier-recorded one of its
relationship), and with them every figure the folds derive. What is not reproduced is
when each was recorded (`recorded_at`, which the new store sets to the time of the
ingest) and so the Merkle root over the whole log, which commits to it: a signed
checkpoint of the old store does not verify against the new one (keep it with the old
store's export).

Each line is an interaction's canonical JSON exactly as the chain hashed it (sorted
keys, money as decimal text, absent fields left out), retractions included, read from
the log page by page: memory holds one page, whatever the ledger's size. The file is
written beside its final name and linked in only once whole, so an export that fails
half-way leaves no half file behind, and an existing file is replaced only when asked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from domain.chain import canonical_json
from domain.ledger import RelationshipLedger
from domain.stored import UnreadableRecord

PAGE = 2000
"""Log rows read per query."""


@dataclass
class ExportReport:
    """What an export wrote."""

    interactions: int = 0
    latest_occurred_at: datetime | None = None
    path: str | None = None

    def future_skew_days(self, now: datetime | None = None) -> int:
        """The `--max-future-skew` an ingest of the export needs: recorded histories may
        run past today (simulated or planned ones), which intake otherwise refuses."""
        latest = self.latest_occurred_at
        ahead = 0.0 if latest is None else (latest - (now or datetime.now(UTC))).total_seconds()
        return max(1, int(ahead // 86400) + 2)

    def restore_hint(self, path: str) -> str:
        skew = self.future_skew_days()
        option = "" if skew <= 1 else f" --max-future-skew {skew}"
        return f"relledger --db NEW_STORE_URL ingest{option} {path}"

    def view(self) -> dict[str, Any]:
        """The JSON of `export --json`."""
        latest = self.latest_occurred_at
        return {
            "interactions": self.interactions,
            "latest_occurred_at": None if latest is None else latest.isoformat(),
            "path": self.path,
            "restore": self.restore_hint(self.path or "FILE"),
        }


def export_interactions(
    ledger: RelationshipLedger,
    out: IO[bytes],
    *,
    on_progress: Callable[[int, int], None] | None = None,
    page: int = PAGE,
) -> ExportReport:
    """Write every stored interaction to `out`, one canonical JSON object per line, in
    log order. A record that no longer decodes stops the export (`CorruptRecord`, a
    `Damaged`): a backup missing it would not restore the same chains. `on_progress`
    hears (written, head) after each page."""
    head = ledger.head()
    report = ExportReport()
    after = 0
    while True:
        entries = ledger.read_log(after, page)
        for entry in entries:
            if isinstance(entry, UnreadableRecord):
                raise entry.problem()
            out.write(canonical_json(entry.record) + b"\n")
            occurred = datetime.fromisoformat(entry.record["occurred_at"])
            if report.latest_occurred_at is None or occurred > report.latest_occurred_at:
                report.latest_occurred_at = occurred
            after = entry.position
        report.interactions += len(entries)
        if on_progress is not None:
            on_progress(report.interactions, head)
        if len(entries) < page:
            break
    return report
