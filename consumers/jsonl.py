"""File ingestion: JSONL lines in, recorded interactions and a per-line report out.

Valid lines are recorded in batches (one transaction per batch); a bad line is
reported with its number, as soon as it is known, and never stops the rest of the
file. Memory is bounded by the work in hand, whatever the file holds: lines are
read with a size limit (a longer one is skipped without being held, and refused),
and rejections are handed to the caller batch by batch, in line order, not
collected: a batch closes when it holds `batch_size` lines, good or bad.

Two things stop a file as a whole rather than line by line: a file that is not JSONL
at all (a JSON array, or one pretty-printed object spread over many lines) is refused
once, before anything of it is recorded, instead of as one error per line; and a stop
request (Ctrl-C) ends the ingest at the next batch boundary, so what was recorded is
whole batches and re-running the same command resumes (what is already recorded comes
back as duplicates, recognised by `(source, event_id)`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from itertools import chain
from typing import Any, BinaryIO

from domain.contract import DEFAULT_LIMITS, IntakeLimits, Interaction, parse_interaction
from domain.errors import ContractViolation, InteractionConflict, InteractionRejected, Rejected
from domain.ledger import Outcome, RelationshipLedger
from domain.relationship import Recorded

DEFAULT_BATCH_SIZE = 500
_SKIP_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class LineRejection:
    line: int
    error: InteractionRejected

    def __str__(self) -> str:
        return f"line {self.line}: {self.error}"


@dataclass
class IngestReport:
    """Counts only: the rejections themselves went to `on_rejection` as they came."""

    recorded: int = 0
    duplicates: int = 0
    late: int = 0
    conflicts: int = 0
    rejected: int = 0
    """Every refused line, conflicts included."""
    interrupted: bool = False
    """Stopped at a batch boundary before the end of the input (a stop request)."""

    def count(self, outcome: Outcome) -> None:
        """One more offered interaction, by what became of it (every face counts so)."""
        if isinstance(outcome, InteractionRejected):
            self.rejected += 1
            self.conflicts += isinstance(outcome, InteractionConflict)
        elif outcome is Recorded.DUPLICATE:
            self.duplicates += 1
        else:
            self.recorded += 1
            self.late += outcome is Recorded.LATE

    def add(self, other: IngestReport) -> None:
        self.recorded += other.recorded
        self.duplicates += other.duplicates
        self.late += other.late
        self.conflicts += other.conflicts
        self.rejected += other.rejected
        self.interrupted = self.interrupted or other.interrupted

    def view(self) -> dict[str, Any]:
        """The JSON of `ingest --json`."""
        return asdict(self)

    def summary(self) -> str:
        return (
            f"recorded {self.recorded} (late {self.late}), duplicates {self.duplicates}, "
            f"conflicts {self.conflicts}, rejected {self.rejected}"
        )


@dataclass(frozen=True, slots=True)
class OversizedLine:
    """A line longer than the limit: only its size is kept, never its content."""

    size: int


def bounded_lines(handle: BinaryIO, max_bytes: int) -> Iterator[bytes | OversizedLine]:
    """The lines of `handle`, each at most `max_bytes` (plus its newline) in memory.

    A longer line is read through in chunks and yielded as its size alone, so a
    300 MB line costs no more memory than a short one.
    """
    while True:
        line = handle.readline(max_bytes + 1)
        if not line:
            return
        if line.endswith(b"\n") or len(line) <= max_bytes:
            yield line
            continue
        size = len(line)
        while not line.endswith(b"\n"):
            line = handle.readline(_SKIP_CHUNK)
            if not line:
                break
            size += len(line)
        yield OversizedLine(size - (1 if line.endswith(b"\n") else 0))


class NotJsonLines(Rejected):
    """A whole input that is not one JSON object per line: refused once, nothing recorded."""


def jsonl_layout(lines: Iterable[bytes | OversizedLine]) -> Iterator[bytes | OversizedLine]:
    """`lines` as they are, after a look at the first two non-blank ones: raises
    `NotJsonLines` for a JSON array (the first starts with `[`) or pretty-printed JSON
    (the first is an object left open, the next a member of it), before any is yielded.

    A JSONL line is a whole object (`{...}`): one that is not is otherwise a bad line
    among good ones, and is reported as such."""
    lines = iter(lines)
    seen: list[bytes | OversizedLine] = []
    firsts: list[bytes] = []
    for line in lines:
        seen.append(line)
        if isinstance(line, OversizedLine):
            break
        stripped = line.strip().lstrip(b"\xef\xbb\xbf")
        if stripped:
            firsts.append(stripped)
        if len(firsts) == 2 or (firsts and not firsts[0].startswith(b"{")):
            break
    if firsts and firsts[0].startswith(b"["):
        raise NotJsonLines(_NOT_JSONL + "this looks like a JSON array")
    opened = bool(firsts) and firsts[0].startswith(b"{") and not firsts[0].endswith(b"}")
    if opened and (firsts[0] == b"{" or (len(firsts) == 2 and not firsts[1].startswith(b"{"))):
        raise NotJsonLines(_NOT_JSONL + "this looks like pretty-printed JSON")
    yield from chain(seen, lines)


_NOT_JSONL = "expected one JSON object per line (JSONL); "


def ingest_lines(
    ledger: RelationshipLedger,
    lines: Iterable[bytes | OversizedLine],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    limits: IntakeLimits = DEFAULT_LIMITS,
    clock: Callable[[], datetime] | None = None,
    record: Callable[[Sequence[Interaction]], list[Outcome]] | None = None,
    on_rejection: Callable[[LineRejection], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> IngestReport:
    """Record every valid line; return the counts.

    `clock` is the recording clock checked against `occurred_at` (default: now, UTC).
    `record` stores one batch (default: `ledger.record_batch`; the CLI passes one that
    waits out store outages). `on_rejection` hears each refused line once its batch
    is decided, in line order. `on_progress` receives the bytes consumed so far. Late
    events are recorded (and counted in `recorded` too): `late` says how many of the
    recorded ones arrived after a later-dated event of their relationship. Once `stop` is
    set, the ingest ends after the batch in hand (`interrupted` in the report).
    """
    now = clock or (lambda: datetime.now(UTC))
    store = record or ledger.record_batch
    report = IngestReport()
    batch: list[tuple[int, Interaction]] = []
    refused: list[LineRejection] = []
    consumed = 0

    def reject(number: int, error: InteractionRejected) -> None:
        report.count(error)
        refused.append(LineRejection(number, error))

    def flush() -> None:
        outcomes = store([item for _, item in batch]) if batch else []
        for (number, _), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, InteractionRejected):
                reject(number, outcome)
            else:
                report.count(outcome)
        batch.clear()
        if on_rejection is not None:
            for rejection in sorted(refused, key=lambda rejection: rejection.line):
                on_rejection(rejection)
        refused.clear()
        if on_progress is not None:
            on_progress(consumed)

    received_at = now()
    for number, line in enumerate(lines, start=1):
        if isinstance(line, OversizedLine):
            consumed += line.size
            reject(number, _oversized(line, limits))
        else:
            consumed += len(line)
            if not line.strip():
                continue
            try:
                item = parse_interaction(
                    line.rstrip(b"\r\n"), received_at=received_at, limits=limits
                )
                batch.append((number, item))
            except InteractionRejected as error:
                reject(number, error)
        if len(batch) + len(refused) >= batch_size:
            flush()
            if stop is not None and stop.is_set():
                report.interrupted = True
                return report
            received_at = now()
    flush()
    return report


def _oversized(line: OversizedLine, limits: IntakeLimits) -> ContractViolation:
    return ContractViolation(
        "message", f"is {line.size} bytes; the limit is {limits.max_message_bytes}"
    )
