"""Where each partition resumes: the offset stored in the database, never the broker's.

Each topic-partition has one `eventsourcing` tracking row, `kafka:{topic}:{partition}`,
holding the *next* offset to read (last recorded offset + 1). It commits in the same
transaction as the events of the batch it covers, so it can never disagree with them.
Offsets committed to Kafka are only a courtesy for monitoring tools.

Assignment happens inside `KafkaConsumer.poll()`, on kafka-python's IO thread, which
also drives heartbeats: a database read there would stall the group during an outage
(and SQLite would be read from a second thread). So the listener only *pauses* newly
assigned partitions and notes them; the consumer's own thread then reads the stored
positions, seeks and resumes (`PartitionPositions.settle`). A paused partition returns
no records, so nothing is fetched from the broker's guess of the position.

A topic deleted and recreated empty while the store keeps its offsets would otherwise
go wrong quietly: the stored next offset lies beyond the new partition's end, so a
broker like Tansu answers empty fetches until the new topic grows past it (skipping
everything below), and Apache Kafka resets the fetch to the beginning, whose records
the tracking row then refuses as "already stored" for ever (a stall). So a partition
whose broker range no longer contains the stored offset is detected (`check_records`,
`check_ends`, and the start of the range in `settle`), logged as one `ERROR` line
naming topic, partition, stored offset and the broker's range, and:

- beyond the end (the topic was recreated): the partition starts a new *epoch* and
  resumes at the broker's beginning. Tracking rows never move backward (the library
  refuses it, and that refusal is what keeps two members from storing one batch), so
  the new epoch has its own tracking row, `kafka:{topic}:{partition}:{epoch}`, and the
  count of epochs is itself a tracking row, `kafka-epoch:{topic}:{partition}`.
  Records arriving in the new topic are new; one republished there is anyway a
  duplicate by its `(source, event_id)`.
- below the beginning (retention deleted records before they were recorded): it
  resumes at the beginning; those records are gone from the broker, and the line says
  which offsets.

The broker's end comes from fetch responses (`highwater`), never from a ListOffsets
"latest" request, which Tansu answers wrongly.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable
from typing import Any

from eventsourcing.persistence import IntegrityError, Tracking
from kafka import ConsumerRebalanceListener  # type: ignore[import-untyped]
from kafka.errors import KafkaError  # type: ignore[import-untyped]

from domain.ledger import RelationshipLedger

log = logging.getLogger("relledger.kafka")


def tracking_name(topic: str, partition: int, epoch: int = 0) -> str:
    """The tracking row of one topic-partition (shared by every group reading the topic
    into this store: the store, not the group, knows what was recorded).

    `epoch` counts the times the topic was found recreated (0: never, the row every
    store had before epochs existed); each epoch has its own row.
    """
    name = f"kafka:{topic}:{partition}"
    return name if epoch == 0 else f"{name}:{epoch}"


def epoch_name(topic: str, partition: int) -> str:
    """The tracking row whose position is the partition's current epoch (absent: 0)."""
    return f"kafka-epoch:{topic}:{partition}"


class PartitionPositions(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tracks assignment changes and puts each new partition at its stored position."""

    def __init__(self, consumer: Any, ledger: RelationshipLedger) -> None:
        self._consumer = consumer
        self._ledger = ledger
        self._lock = threading.Lock()
        self._unsettled: set[Any] = set()
        self._pending_recovery: set[Any] = set()
        self.next_offsets: dict[Any, int] = {}
        """Per assigned partition, the next offset the store holds (what we resumed at or
        last stored); used for lag and the courtesy commit. Main thread only."""
        self.epochs: dict[Any, int] = {}
        """Per assigned partition, the epoch its positions are stored under. Main thread."""
        self._stale_highwater: dict[Any, int | None] = {}
        """The highwater kafka-python still reports from before our last seek: it says
        nothing about the new position until a fetch there replaces it."""
        self.rebalances = 0
        self.resets = 0
        """Partitions found outside the broker's range (recreated or truncated topics)."""

    # -- IO thread: no database, no blocking calls ---------------------------------

    def on_partitions_revoked(self, revoked: Iterable[Any]) -> None:
        self._forget(revoked)

    def on_partitions_lost(self, lost: Iterable[Any]) -> None:
        self._forget(lost)

    def on_partitions_assigned(self, assigned: Iterable[Any]) -> None:
        assigned = list(assigned)
        with self._lock:
            self.rebalances += 1
            self._unsettled.update(assigned)
        if assigned:
            self._consumer.pause(*assigned)
        log.info("assigned partitions=%s", _names(assigned))

    def _forget(self, partitions: Iterable[Any]) -> None:
        partitions = list(partitions)
        with self._lock:
            self._unsettled.difference_update(partitions)
        if partitions:
            log.info("revoked partitions=%s", _names(partitions))

    # -- consumer thread ----------------------------------------------------------

    @property
    def unsettled(self) -> bool:
        with self._lock:
            return bool(self._unsettled)

    def is_unsettled(self, partition: Any) -> bool:
        with self._lock:
            return partition in self._unsettled

    def name(self, partition: Any) -> str:
        """The tracking row `partition`'s positions are stored in now."""
        return tracking_name(partition.topic, partition.partition, self.epochs.get(partition, 0))

    def settle(self) -> None:
        """Seek every newly assigned partition to its stored position and resume it.

        Database errors propagate (the caller retries with backoff); a partition that
        is still unsettled stays paused meanwhile, so nothing is read past the truth.
        """
        with self._lock:
            pending = sorted(self._unsettled)
        assignment = self._consumer.assignment()
        for partition in pending:
            if partition not in assignment:  # revoked again before we got here
                self._discard(partition)
                continue
            self._seek_stored(partition, check_beginning=True)
            self._discard(partition)
            self._consumer.resume(partition)
        for partition in list(self.next_offsets):
            if partition not in assignment:
                del self.next_offsets[partition]
        for partition in list(self.epochs):
            if partition not in assignment:
                del self.epochs[partition]

    def _seek_stored(self, partition: Any, *, check_beginning: bool) -> None:
        """Read the partition's epoch and stored position, seek there (or to the broker's
        beginning when the store holds nothing, or only offsets the broker no longer has)."""
        epoch = self._ledger.positions.max_tracking_id(
            epoch_name(partition.topic, partition.partition)
        )
        self.epochs[partition] = epoch or 0
        stored = self._ledger.positions.max_tracking_id(self.name(partition))
        self._stale_highwater[partition] = self._consumer.highwater(partition)
        if stored is None:
            self._consumer.seek_to_beginning(partition)
            self.next_offsets.pop(partition, None)
            at = "beginning"
        else:
            beginning = self._beginning(partition) if check_beginning else None
            if beginning is not None and stored < beginning:
                _report(
                    partition,
                    stored,
                    beginning,
                    self._consumer.highwater(partition),
                    f"the broker no longer holds offsets {stored}..{beginning - 1}, "
                    "deleted before they were recorded (retention, or the topic was "
                    "recreated); resuming at the broker's beginning",
                )
                self.resets += 1
                stored = beginning
            self._consumer.seek(partition, stored)
            self.next_offsets[partition] = stored
            at = str(stored)
        log.info(
            "resuming partition=%s epoch=%d at offset=%s",
            _name(partition),
            self.epochs[partition],
            at,
        )

    # -- a topic recreated (or truncated) under the stored offsets ------------------

    def check_records(self, partition: Any, records: list[Any]) -> bool:
        """True if `records` start below the stored position: the broker reset the fetch
        (Apache Kafka does, to the beginning, when the stored offset is out of its
        range). The partition then waits for `recover`; the caller drops the records,
        which are read again from where the partition resumes."""
        stored = self.next_offsets.get(partition)
        if stored is None or not records or records[0].offset >= stored:
            return False
        self._found_recreated(partition, stored, self._consumer.highwater(partition))
        return True

    def check_ends(self) -> list[Any]:
        """Partitions whose broker end (the highwater of a fetch at the stored position)
        is below the stored next offset: recreated topics, as Tansu shows them (empty
        fetches, no error). Each then waits for `recover`; returns them."""
        found = []
        for partition, stored in list(self.next_offsets.items()):
            if self.is_unsettled(partition):
                continue
            try:
                end = self._consumer.highwater(partition)
            except Exception:  # no longer assigned: the new owner checks it
                continue
            if end is None or end >= stored or end == self._stale_highwater.get(partition):
                continue
            self._found_recreated(partition, stored, end)
            found.append(partition)
        return found

    def _found_recreated(self, partition: Any, stored: int, end: int | None) -> None:
        self.resets += 1
        _report(
            partition,
            stored,
            self._beginning(partition),
            end,
            "the stored offset is beyond the broker's end: the topic was recreated; "
            f"recording it from the broker's beginning as epoch "
            f"{self.epochs.get(partition, 0) + 1}",
        )
        self._pending_recovery.add(partition)

    def recover(self) -> None:
        """Start a new epoch for every partition found recreated and seek it to where
        that epoch stands (the broker's beginning, unless another member got there
        first). Database errors propagate (the caller retries); it is safe to repeat."""
        for partition in sorted(self._pending_recovery):
            known = self.epochs.get(partition, 0)
            name = epoch_name(partition.topic, partition.partition)
            # Already moved by another member (or by our own attempt, retried): fine.
            with contextlib.suppress(IntegrityError):
                self._ledger.positions.insert_tracking(Tracking(name, known + 1))
            try:
                self._seek_stored(partition, check_beginning=False)
            except (ValueError, AssertionError, KafkaError):  # no longer assigned
                self.next_offsets.pop(partition, None)
            self._pending_recovery.discard(partition)

    @property
    def recovering(self) -> bool:
        return bool(self._pending_recovery)

    def _beginning(self, partition: Any) -> int | None:
        """The broker's first offset of `partition`, or None if it cannot say now."""
        try:
            found: dict[Any, int] = self._consumer.beginning_offsets([partition])
        except KafkaError as error:
            log.warning("cannot read the beginning of %s: %r", _name(partition), error)
            return None
        return found.get(partition)

    def reseek(self, partition: Any, stored: int) -> None:
        """After another member stored past us: continue from what the store holds."""
        self.next_offsets[partition] = stored
        try:
            self._stale_highwater[partition] = self._consumer.highwater(partition)
        except Exception:  # no longer assigned
            self._stale_highwater.pop(partition, None)
        try:
            self._consumer.seek(partition, stored)
        except ValueError:  # no longer assigned: the new owner carries on
            self.next_offsets.pop(partition, None)

    def _discard(self, partition: Any) -> None:
        with self._lock:
            self._unsettled.discard(partition)


def _name(partition: Any) -> str:
    return f"{partition.topic}[{partition.partition}]"


def _names(partitions: Iterable[Any]) -> str:
    return ",".join(_name(p) for p in sorted(partitions)) or "-"


def _report(partition: Any, stored: int, beginning: int | None, end: int | None, what: str) -> None:
    """The one loud line an operator (or an alert on `partition_reset`) sees."""
    log.error(
        "partition_reset topic=%s partition=%d stored_offset=%d broker_beginning=%s "
        "broker_end=%s: %s",
        partition.topic,
        partition.partition,
        stored,
        "-" if beginning is None else beginning,
        "-" if end is None else end,
        what,
    )
