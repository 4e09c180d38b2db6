"""The consumer's counters, and the one log line an operator reads.

Counts are since the process started. `lag` is the broker's highwater minus the
stored position, summed over the partitions this member owns (None until the first
fetch has reported a highwater).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field

log = logging.getLogger("relledger.kafka")


@dataclass
class ConsumerStats:
    consumed: int = 0
    """Messages read from the broker (every one ends recorded, duplicate or dead-lettered,
    unless its batch was dropped because another member had stored it)."""
    recorded: int = 0
    """Interactions stored, late ones included."""
    late: int = 0
    duplicates: int = 0
    conflicts: int = 0
    """Messages reusing a recorded `(source, event_id)` for other content (dead-lettered)."""
    dead_lettered: int = 0
    """Every message sent to the dead-letter topic, conflicts included."""
    batches: int = 0
    """Partition batches committed to the store."""
    dropped: int = 0
    """Messages whose batch another group member had already stored (after a rebalance)."""
    retries: int = 0
    """Retries of a transaction after a database or dead-letter-topic outage."""
    rebalances: int = 0
    resets: int = 0
    """Partitions found recreated (or trimmed) under their stored offsets and read again
    from the broker's beginning (each also logged as a `partition_reset` line)."""
    partitions: int = 0
    lag: int | None = None
    started: float = field(default_factory=time.monotonic, repr=False)

    def fields(self) -> dict[str, int | float | None]:
        values: dict[str, int | float | None] = {
            key: value for key, value in asdict(self).items() if key != "started"
        }
        elapsed = time.monotonic() - self.started
        values["rate"] = round(self.consumed / elapsed, 1) if elapsed > 0 else 0.0
        return values

    def line(self) -> str:
        """`key=value` pairs, stable order, for logs and `--stats`."""
        return " ".join(
            f"{key}={'-' if value is None else value}" for key, value in self.fields().items()
        )


class StatsTicker:
    """Logs the counters every `interval_s` seconds (and on demand)."""

    def __init__(self, stats: ConsumerStats, interval_s: float) -> None:
        self.stats = stats
        self.interval_s = interval_s
        self._due = time.monotonic() + interval_s

    def tick(self) -> None:
        if self.interval_s > 0 and time.monotonic() >= self._due:
            self.emit()

    def emit(self) -> None:
        log.info("stats %s", self.stats.line())
        self._due = time.monotonic() + self.interval_s
