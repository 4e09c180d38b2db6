"""Kafka ingestion: a consumer-group member that records `interaction/v1` messages.

Every message is recorded exactly once in effect, whatever crashes, because the
database, not the broker, holds the truth:

- per polled partition batch, the accepted interactions and the partition's next offset
  (an `eventsourcing` tracking row, `kafka:{topic}:{partition}`) commit in ONE
  transaction; the broker's committed offsets are only a courtesy;
- on assignment each partition resumes at its stored offset (`kafka_positions`);
- a redelivered message is a counted duplicate (the ledger's idempotency key), never a
  second event; a batch another member already stored is refused by the tracking row
  (`PositionAlreadyRecorded`) and dropped, and we re-read from what is stored;
- bad messages (not JSON, contract violations, contradictions) go unchanged to the
  dead-letter topic, flushed *before* the commit that moves past them (the ledger's
  `record_batch(before_commit=...)` hook runs after every message is decided and
  before anything is stored), so none is lost; a crash in between re-sends them
  (at-least-once, deduplicated by their origin headers);
- a database or dead-letter-topic outage retries the same batch with exponential
  backoff: it never skips, and nothing is committed anywhere past what was stored.

Producers key messages by `relationship_id`: one relationship, one partition, one
owner, so a relationship's interactions are recorded in the order they were sent.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any, TypeVar

import psycopg
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError, Tracking
from kafka import KafkaConsumer, KafkaProducer  # type: ignore[import-untyped]
from kafka.errors import KafkaError  # type: ignore[import-untyped]
from kafka.structs import OffsetAndMetadata  # type: ignore[import-untyped]

from consumers.kafka_deadletter import DeadLetter, DeadLetterUnavailable, DeadLetterWriter
from consumers.kafka_positions import PartitionPositions, tracking_name
from consumers.kafka_stats import ConsumerStats, StatsTicker
from domain.contract import Interaction, parse_interaction
from domain.errors import InteractionRejected, LedgerError
from domain.ledger import Outcome, PositionAlreadyRecorded, RelationshipLedger
from domain.relationship import Recorded

log = logging.getLogger("relledger.kafka")
T = TypeVar("T")

TRANSIENT: tuple[type[BaseException], ...] = (
    OperationalError,  # includes the pool's ConnectionUnavailableError
    InterfaceError,
    psycopg.OperationalError,
    sqlite3.OperationalError,  # "database is locked"
    IntegrityError,  # lost the optimistic-concurrency race twice in a row: decide again
    DeadLetterUnavailable,
)
"""Errors after which the same batch is retried (with backoff), never skipped."""


class BrokerUnavailable(LedgerError):
    """The Kafka cluster cannot be reached or refused the client's configuration."""


class BatchAbandoned(LedgerError):
    """Asked to stop while a batch could not be stored: it was not committed anywhere,
    so whoever owns the partition next reads it again."""


@dataclass(frozen=True)
class ConsumerConfig:
    """How to reach the broker and how to consume. Timeouts are kafka-python's, in ms."""

    bootstrap_servers: str
    """`host:port`, or several separated by commas."""
    topic: str
    group_id: str = "relledger"
    dead_letter_topic: str | None = None
    """Defaults to `{topic}.dlq`."""
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

    @property
    def dead_letters_to(self) -> str:
        return self.dead_letter_topic or f"{self.topic}.dlq"

    def servers(self) -> list[str]:
        return [server.strip() for server in self.bootstrap_servers.split(",") if server.strip()]


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
            self._producer = KafkaProducer(bootstrap_servers=servers, client_id=config.client_id)
        except KafkaError as error:
            if getattr(self, "_consumer", None) is not None:
                self._consumer.close(autocommit=False)
            raise BrokerUnavailable(
                f"cannot reach Kafka at {config.bootstrap_servers}: {error!r} (check "
                "--bootstrap-servers and that the broker advertises a reachable address)"
            ) from error
        self._positions = PartitionPositions(self._consumer, ledger)
        self._dead_letters = DeadLetterWriter(
            self._producer, config.dead_letters_to, timeout_s=config.dead_letter_timeout_s
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
            handled += len(records)
            next_offset = self._store_partition_batch(partition, records, stop)
            if next_offset is not None:
                stored[partition] = next_offset
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

    # -- one partition batch ---------------------------------------------------------

    def _store_partition_batch(
        self, partition: Any, records: list[Any], stop: threading.Event
    ) -> int | None:
        """Dead-letter the bad messages, record the rest with the partition's next offset
        in one transaction. Returns the stored next offset, or None if the batch was
        dropped because another member had already stored it."""
        letters: list[DeadLetter] = []
        parsed: list[tuple[Any, Interaction]] = []
        for record in records:
            if record.value is None:
                letters.append(DeadLetter.of(record, "json: the message has no value"))
                continue
            try:
                parsed.append((record, parse_interaction(record.value)))
            except InteractionRejected as violation:
                letters.append(DeadLetter.of(record, str(violation)))
        name = tracking_name(partition.topic, partition.partition)
        tracking = Tracking(application_name=name, notification_id=records[-1].offset + 1)
        sent: list[DeadLetter] = []

        def dead_letter_first(outcomes: Sequence[Outcome]) -> None:
            rejected = [
                DeadLetter.of(record, str(outcome))
                for (record, _), outcome in zip(parsed, outcomes, strict=True)
                if isinstance(outcome, InteractionRejected)
            ]
            batch = sorted([*letters, *rejected], key=lambda letter: letter.offset)
            # This runs again when the batch is retried (a version race, an outage):
            # what this process already sent and flushed is not sent twice.
            done = {letter.offset for letter in sent}
            fresh = [letter for letter in batch if letter.offset not in done]
            self._dead_letters.send_all(fresh)
            sent.extend(fresh)

        items = [item for _, item in parsed]
        try:
            outcomes = self._retrying(
                f"store {name} up to offset {tracking.notification_id}",
                lambda: self.ledger.record_batch(items, tracking, before_commit=dead_letter_first),
                stop,
            )
        except PositionAlreadyRecorded as taken:
            log.warning("dropping batch: %s; continuing at offset=%s", taken, taken.stored)
            self.stats.dropped += len(records)
            self._positions.reseek(partition, taken.stored)
            return None
        self._count(len(records), outcomes, len(sent))
        for letter in sent:
            log.info(
                "dead-lettered origin=%s[%s]@%s reason=%r",
                letter.topic,
                letter.partition,
                letter.offset,
                letter.reason,
            )
        self._positions.next_offsets[partition] = tracking.notification_id
        return tracking.notification_id

    def _count(self, consumed: int, outcomes: Sequence[Outcome], dead_lettered: int) -> None:
        stats = self.stats
        stats.consumed += consumed
        stats.dead_lettered += dead_lettered
        stats.batches += 1
        for outcome in outcomes:
            if outcome is Recorded.DUPLICATE:
                stats.duplicates += 1
            elif outcome is Recorded.LATE:
                stats.recorded += 1
                stats.late += 1
            elif outcome is Recorded.RECORDED:
                stats.recorded += 1

    def _retrying(self, what: str, action: Callable[[], T], stop: threading.Event) -> T:
        """Run `action` until it succeeds, backing off exponentially on outages.

        Never gives up on its own (skipping a batch would lose it); only a stop
        request ends the wait, with `BatchAbandoned` and nothing committed.
        """
        delay = self.config.backoff_initial_s
        while True:
            try:
                return action()
            except TRANSIENT as error:
                self.stats.retries += 1
                log.warning("retrying in %.1fs: %s failed: %r", delay, what, error)
                if stop.wait(delay):
                    raise BatchAbandoned(f"{what}: {error!r}") from error
                delay = min(delay * 2, self.config.backoff_max_s)

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
