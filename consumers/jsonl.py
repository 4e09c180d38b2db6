"""File ingestion: JSONL lines in, recorded interactions and a per-line report out.

Valid lines are recorded in batches (one transaction per batch); a bad line is
reported with its number and never stops the rest of the file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from domain.contract import Interaction, parse_interaction
from domain.errors import InteractionRejected
from domain.ledger import RelationshipLedger
from domain.relationship import Recorded

DEFAULT_BATCH_SIZE = 500


@dataclass(frozen=True, slots=True)
class LineRejection:
    line: int
    error: InteractionRejected

    def __str__(self) -> str:
        return f"line {self.line}: {self.error}"


@dataclass
class IngestReport:
    recorded: int = 0
    duplicates: int = 0
    late: int = 0
    rejections: list[LineRejection] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.rejections)

    def add(self, other: IngestReport) -> None:
        self.recorded += other.recorded
        self.duplicates += other.duplicates
        self.late += other.late
        self.rejections.extend(other.rejections)


def ingest_lines(
    ledger: RelationshipLedger,
    lines: Iterable[bytes],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Callable[[int], None] | None = None,
) -> IngestReport:
    """Record every valid line; `on_progress` receives the bytes consumed so far.

    Late events are recorded (and counted in `recorded` too): `late` says how many
    of the recorded ones arrived after a later-dated event of their relationship.
    """
    report = IngestReport()
    batch: list[tuple[int, Interaction]] = []
    consumed = 0

    def reject(number: int, error: InteractionRejected) -> None:
        report.rejections.append(LineRejection(number, error))

    def flush() -> None:
        outcomes = ledger.record_batch([item for _, item in batch])
        for (number, _), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, InteractionRejected):
                reject(number, outcome)
            elif outcome is Recorded.DUPLICATE:
                report.duplicates += 1
            else:
                report.recorded += 1
                if outcome is Recorded.LATE:
                    report.late += 1
        batch.clear()
        if on_progress is not None:
            on_progress(consumed)

    for number, line in enumerate(lines, start=1):
        consumed += len(line)
        if not line.strip():
            continue
        try:
            batch.append((number, parse_interaction(line)))
        except InteractionRejected as error:
            reject(number, error)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    elif on_progress is not None:
        on_progress(consumed)
    report.rejections.sort(key=lambda rejection: rejection.line)
    return report
