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
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

from kafka import ConsumerRebalanceListener  # type: ignore[import-untyped]

from domain.ledger import RelationshipLedger

log = logging.getLogger("relledger.kafka")


def tracking_name(topic: str, partition: int) -> str:
    """The tracking row of one topic-partition (shared by every group reading the topic
    into this store: the store, not the group, knows what was recorded)."""
    return f"kafka:{topic}:{partition}"


class PartitionPositions(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tracks assignment changes and puts each new partition at its stored position."""

    def __init__(self, consumer: Any, ledger: RelationshipLedger) -> None:
        self._consumer = consumer
        self._ledger = ledger
        self._lock = threading.Lock()
        self._unsettled: set[Any] = set()
        self.next_offsets: dict[Any, int] = {}
        """Per assigned partition, the next offset the store holds (what we resumed at or
        last stored); used for lag and the courtesy commit. Main thread only."""
        self.rebalances = 0

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
            stored = self._ledger.positions.max_tracking_id(
                tracking_name(partition.topic, partition.partition)
            )
            if stored is None:
                self._consumer.seek_to_beginning(partition)
                self.next_offsets.pop(partition, None)
            else:
                self._consumer.seek(partition, stored)
                self.next_offsets[partition] = stored
            self._discard(partition)
            self._consumer.resume(partition)
            log.info("resuming partition=%s at offset=%s", _name(partition), stored or 0)
        for partition in list(self.next_offsets):
            if partition not in assignment:
                del self.next_offsets[partition]

    def reseek(self, partition: Any, stored: int) -> None:
        """After another member stored past us: continue from what the store holds."""
        self.next_offsets[partition] = stored
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
