"""Kafka ingestion: a consumer-group member that records `interaction/v1` messages.

Every message is recorded exactly once in effect, whatever crashes, because the
database, not the broker, holds the truth:

- per polled partition batch, the accepted interactions and the partition's next offset
  (an `eventsourcing` tracking row, `kafka:{topic}:{partition}`) commit in ONE
  transaction; the broker's committed offsets are only a courtesy;
- on assignment each partition resumes at its stored offset (`kafka_positions`); a
  topic recreated empty under the stored offsets is detected, logged (one
  `partition_reset` ERROR line) and recorded again from its beginning as a new epoch;
- a redelivered message is a counted duplicate (the ledger's idempotency key), never a
  second event; a batch another member already stored is refused by the tracking row
  (`PositionAlreadyRecorded`) and dropped, and we re-read from what is stored;
- bad messages (not JSON, contract violations, contradictions, conflicts, even ones
  that raise errors nobody foresaw) go to the dead-letter topic with their reason,
  flushed *before* the commit that moves past them (the ledger's
  `record_batch(before_commit=...)` hook runs after every message is decided and
  before anything is stored), so none is lost and none stops its partition
  (`kafka_batch`); a crash in between re-sends them (at-least-once, deduplicated by
  their origin headers);
- a database or dead-letter-topic outage retries the same batch with backoff: it never
  skips, and nothing is committed anywhere past what was stored.

Producers key messages by `relationship_id`: one relationship, one partition, one
owner, so a relationship's interactions are recorded in the order they were sent.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from kafka import KafkaConsumer, KafkaProducer  # type: ignore[import-untyped]
from kafka.errors import KafkaError  # type: ignore[import-untyped]
from kafka.structs import OffsetAndMetadata  # type: ignore[import-untyped]

from consumers.kafka_batch import BatchAbandoned, PartitionBatches, Retrier
from consumers.kafka_deadletter import DeadLetterWriter
from consumers.kafka_positions import PartitionPositions
from consumers.kafka_stats import ConsumerStats, StatsTicker
from domain.contract import DEFAULT_LIMITS, IntakeLimits
from domain.errors import Unavailable
from domain.ledger import RelationshipLedger

log = logging.getLogger("relledger.kafka")


class BrokerUnavailable(Unavailable):
    """The Kafka cluster cannot be reached or refused the client's configuration."""


@dataclass(frozen=True)
class ConsumerConfig:
    """How to reach the broker and how to consume. Timeouts are kafka-python's, in ms."""

    bootstrap_servers: str
    """`host:port`, or several separated by commas."""
    topic: str
    group_id: str = "relledger"
    dead_letter_topic: str | None = None
    """Defaults to `{topic}.dlq`."""
    dead_letter_bootstrap_servers: str | None = None
    """Where the dead-letter topic lives, if not on the source cluster."""
    client_id: str = "relledger"
    max_records: int = 500
    """Messages per poll, over all partitions; each partition's share is one transaction."""
    poll_timeout_ms: int = 1000
    """Also the longest a stop request waits for an idle poll to return."""
    session_timeout_ms: int = 6000
    """A dead member is noticed after about this long; a group join takes about half."""
    heartbeat_interval_ms: int = 1000
    max_poll_interval_ms: int = 300_000
    stats_interval_s: float = 30.0
    """A `stats ...` log line this often; 0 turns it off (it still comes at close)."""
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    dead_letter_timeout_s: float = 30.0
    """How long one attempt at delivering dead letters may take, metadata included."""
    limits: IntakeLimits = field(default=DEFAULT_LIMITS)
    """What intake accepts beyond the schema (message size, future skew)."""

    @property
    def dead_letters_to(self) -> str:
        return self.dead_letter_topic or f"{self.topic}.dlq"

    def servers(self, dead_letters: bool = False) -> list[str]:
        """The source cluster's brokers, or (`dead_letters`) the dead-letter topic's."""
        listed = self.bootstrap_servers
        if dead_letters and self.dead_letter_bootstrap_servers:
            listed = self.dead_letter_bootstrap_servers
        return [server.strip() for server in listed.split(",") if server.strip()]


class LedgerConsumer:
    """One member of a consumer group, recording a topic into a `RelationshipLedger`.

    `run(stop)` polls until `stop` is set, then finishes the batch in hand, commits and
    leaves the group (`close()`). `poll_once()` is one turn of that loop. The ledger
    stays the caller's to close.
    """

    def __init__(self, ledger: RelationshipLedger, config: ConsumerConfig) -> None:
        self.ledger = ledger
        self.config = config
        self.stats = ConsumerStats()
        self._ticker = StatsTicker(self.stats, config.stats_interval_s)
        self._closed = False
        servers = config.servers()
        try:
            self._consumer = KafkaConsumer(
                bootstrap_servers=servers,
                group_id=config.group_id,
                client_id=config.client_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",  # only where the store holds nothing yet
                max_poll_records=config.max_records,
                session_timeout_ms=config.session_timeout_ms,
                heartbeat_interval_ms=config.heartbeat_interval_ms,
                max_poll_interval_ms=config.max_poll_interval_ms,
            )
            self._producer = KafkaProducer(
                bootstrap_servers=config.servers(dead_letters=True),
                client_id=config.client_id,
                max_block_ms=int(config.dead_letter_timeout_s * 1000),
            )
        except KafkaError as error:
            if getattr(self, "_consumer", None) is not None:
                self._consumer.close(autocommit=False)
            raise BrokerUnavailable(
                f"cannot reach Kafka at {config.bootstrap_servers}: {error!r} (check "
                "--bootstrap-servers and that the broker advertises a reachable address)"
            ) from error
        self._positions = PartitionPositions(self._consumer, ledger)
        self._retrying = Retrier(self.stats, config.backoff_initial_s, config.backoff_max_s)
        self._batches = PartitionBatches(
            ledger,
            DeadLetterWriter(
                self._producer, config.dead_letters_to, timeout_s=config.dead_letter_timeout_s
            ),
            self._positions,
            self._retrying,
            config.limits,
        )
        self._consumer.subscribe(topics=[config.topic], listener=self._positions)

    def __enter__(self) -> LedgerConsumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the loop ------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None) -> ConsumerStats:
        """Consume until `stop` is set (e.g. by `install_stop_signals`), then close."""
        stop = stop or threading.Event()
        log.info(
            "consuming topic=%s group=%s dead_letter_topic=%s",
            self.config.topic,
            self.config.group_id,
            self.config.dead_letters_to,
        )
        try:
            while not stop.is_set():
                self.poll_once(stop)
            log.info("stop requested: the last batch is stored; leaving the group")
        except BatchAbandoned as abandoned:
            log.warning("stopping without storing the batch in hand: %s", abandoned)
        finally:
            self.close()
        return self.stats

    def poll_once(self, stop: threading.Event | None = None) -> int:
        """Poll once and store everything that arrived; returns how many messages.

        Raises `BatchAbandoned` if `stop` is set while a batch cannot be stored.
        """
        stop = stop or threading.Event()
        if self._positions.unsettled:
            self._retrying("resume assigned partitions", self._positions.settle, stop)
        if self._positions.recovering:  # a recreated topic's epoch, left unfinished
            self._retrying("start a recreated topic's epoch", self._positions.recover, stop)
        polled: dict[Any, list[Any]] = self._consumer.poll(
            timeout_ms=self.config.poll_timeout_ms, max_records=self.config.max_records
        )
        stored: dict[Any, int] = {}
        handled = 0
        for partition, records in polled.items():
            if not records or self._positions.is_unsettled(partition):
                # Assigned again during this poll: it resumes from the store on the next
                # turn (`settle` seeks), so these records are read again then.
                continue
            if self._positions.check_records(partition, records):
                # Below the stored position: the topic was recreated (`recover` seeks
                # to where its new epoch stands; these records are read again there).
                continue
            handled += len(records)
            next_offset = self._batches.store(partition, records, stop)
            if next_offset is not None:
                stored[partition] = next_offset
        self._positions.check_ends()
        if self._positions.recovering:
            self._retrying("start a recreated topic's epoch", self._positions.recover, stop)
        if stored:
            self._courtesy_commit(stored)
        self._refresh_gauges()
        self._ticker.tick()
        return handled

    def positions(self) -> dict[int, int]:
        """Per partition this member owns and has stored (or resumed at), the next offset
        the store holds for it: what `relledger consume` (in its stats) can show next to lag."""
        return {tp.partition: offset for tp, offset in self._positions.next_offsets.items()}

    def close(self) -> None:
        """Commit the stored positions to Kafka, leave the group, close the clients."""
        if self._closed:
            return
        self._closed = True
        assigned = self._consumer.assignment()
        positions = {tp: o for tp, o in self._positions.next_offsets.items() if tp in assigned}
        if positions:
            try:
                self._consumer.commit(
                    {tp: OffsetAndMetadata(offset) for tp, offset in positions.items()},
                    timeout_ms=5000,
                )
            except KafkaError as error:
                log.warning("courtesy offset commit at close failed: %r", error)
        try:
            self._consumer.close(autocommit=False)
        finally:
            self._producer.close(timeout=10)
            self._ticker.emit()
        log.info("closed: left group=%s", self.config.group_id)

    # -- courtesy and gauges -----------------------------------------------------------

    def _courtesy_commit(self, stored: dict[Any, int]) -> None:
        """Tell the broker what is stored, for monitoring tools; the store stays the truth,
        so a failure here (e.g. during a rebalance) is only logged."""
        offsets = {tp: OffsetAndMetadata(offset) for tp, offset in stored.items()}
        try:
            self._consumer.commit_async(offsets, callback=_log_commit_failure)
        except KafkaError as error:
            log.warning("courtesy offset commit failed: %r", error)

    def _refresh_gauges(self) -> None:
        stats = self.stats
        stats.rebalances = self._positions.rebalances
        stats.resets = self._positions.resets
        assignment = self._consumer.assignment()
        stats.partitions = len(assignment)
        lag = 0
        known = False
        for partition in assignment:
            highwater = self._consumer.highwater(partition)
            if highwater is not None:
                known = True
                lag += max(0, highwater - self._positions.next_offsets.get(partition, 0))
        stats.lag = lag if known else None


def _log_commit_failure(offsets: dict[Any, Any], response: Any) -> None:
    if isinstance(response, BaseException):
        log.info("courtesy offset commit not accepted (the store is the truth): %r", response)


def install_stop_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set `stop`: the consumer finishes its batch, commits and leaves
    the group. A second signal gets the default behaviour (an impatient operator wins).
    Call from the main thread."""

    def handle(signum: int, frame: FrameType | None) -> None:
        # No logging here: the interrupted code may hold the logging lock.
        stop.set()
        default = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
        signal.signal(signum, default)

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
