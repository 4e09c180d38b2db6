"""One partition batch: validate, decide, dead-letter and store it, whatever it contains.

The happy path is one transaction per partition batch: `record_batch` decides every
valid interaction, the `before_commit` hook flushes the batch's dead letters, and the
events commit with the partition's next offset (the tracking row).

A message must never stop its partition, whatever it contains:

- anything that goes wrong while *validating* one message, a rule it breaks or an error
  nobody foresaw, dead-letters that message (`refusal` gives its code and reason);
- *deciding* happens inside `record_batch`, for the whole batch at once: if it raises an
  error that is neither an outage (`TRANSIENT`, retried) nor "another member stored
  this" (`PositionAlreadyRecorded`), one message is poison but we do not know which. The
  batch is then stored one message per transaction, each with its own next offset, so
  everything stays exactly once across crashes; a message that still fails alone is
  dead-lettered and only the position moves past it. If even that position-only
  commit fails, the store itself is broken, and the error propagates.

Outages retry the same transaction with backoff (`domain.retry`), for ever: skipping
would lose a batch. Only a stop request ends the wait (`BatchAbandoned`, nothing
committed).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
from eventsourcing.persistence import IntegrityError, Tracking

from consumers.jsonl import IngestReport
from consumers.kafka_deadletter import DeadLetter, DeadLetterUnavailable, DeadLetterWriter
from consumers.kafka_positions import PartitionPositions
from consumers.kafka_stats import ConsumerStats
from domain.contract import DEFAULT_LIMITS, IntakeLimits, Interaction, parse_interaction
from domain.errors import (
    ContractViolation,
    InteractionRejected,
    Unavailable,
)
from domain.ledger import STORE_OUTAGES, Outcome, PositionAlreadyRecorded, RelationshipLedger
from domain.retry import RetryNotice, retry_call

log = logging.getLogger("relledger.kafka")
T = TypeVar("T")

TRANSIENT: tuple[type[BaseException], ...] = (
    *STORE_OUTAGES,  # includes the pool's ConnectionUnavailableError
    psycopg.OperationalError,
    sqlite3.OperationalError,  # "database is locked"
    IntegrityError,  # lost the optimistic-concurrency race for minutes: decide again
    DeadLetterUnavailable,
)
"""Errors after which the same transaction is retried (with backoff), never skipped."""

Message = tuple[Any, Interaction | DeadLetter]
"""A consumed record (kafka-python's, untyped) and what validating it gave."""


class BatchAbandoned(Unavailable):
    """Asked to stop while a batch could not be stored: it was not committed anywhere,
    so whoever owns the partition next reads it again."""


class Retrier:
    """Runs an action until it succeeds, backing off (jittered, exponential) on outages.

    Never gives up on its own; a stop request ends the wait with `BatchAbandoned`. The
    stop is seen between attempts, so an attempt must not wait long on its own: the store
    is opened so that each store call fails within seconds during an outage
    (`service.store.POOL_WAIT_S`), leaving the waiting (logged, counted, stoppable) to us.
    """

    def __init__(self, stats: ConsumerStats, initial_s: float, max_s: float) -> None:
        self.stats = stats
        self.initial_s = initial_s
        self.max_s = max_s

    def __call__(self, what: str, action: Callable[[], T], stop: threading.Event) -> T:
        try:
            return retry_call(
                action,
                what=what,
                retry_on=TRANSIENT,
                give_up_after=None,
                initial_wait=self.initial_s,
                max_wait=self.max_s,
                stop=stop,
                on_retry=self._note,
            )
        except TRANSIENT as error:
            if stop.is_set():
                raise BatchAbandoned(f"{what}: {error!r}") from error
            raise

    def _note(self, notice: RetryNotice) -> None:
        self.stats.retries += 1
        log.warning(
            "retry %d in %.1fs: %s failed: %r",
            notice.attempt,
            notice.wait_s,
            notice.what,
            notice.error,
        )


def validate(record: Any, limits: IntakeLimits = DEFAULT_LIMITS) -> Interaction | DeadLetter:
    """The record's interaction, or its dead letter: no error escapes for one message."""
    if record.value is None:
        return DeadLetter.of(record, ContractViolation("json", "the message has no value"))
    try:
        return parse_interaction(record.value, limits=limits)
    except Exception as error:
        return DeadLetter.of(record, error)


class PartitionBatches:
    """Stores partition batches into the ledger, counting into `stats`."""

    def __init__(
        self,
        ledger: RelationshipLedger,
        dead_letters: DeadLetterWriter,
        positions: PartitionPositions,
        retrier: Retrier,
        limits: IntakeLimits,
    ) -> None:
        self.ledger = ledger
        self.dead_letters = dead_letters
        self.positions = positions
        self.retrier = retrier
        self.stats = retrier.stats
        self.limits = limits

    def store(self, partition: Any, records: list[Any], stop: threading.Event) -> int | None:
        """Store one partition's records; returns the next offset now stored, or None
        if another member had already stored past them (we then continue from there)."""
        messages = [(record, validate(record, self.limits)) for record in records]
        consumed_before = self.stats.consumed
        try:
            try:
                self._commit(partition, messages, stop)
            except (BatchAbandoned, PositionAlreadyRecorded):
                raise
            except Exception as error:
                log.warning(
                    "%s: storing %d messages raised %r; storing them one by one to find "
                    "the one at fault",
                    self.positions.name(partition),
                    len(messages),
                    error,
                )
                for message in messages:
                    self._commit_alone(partition, message, stop)
        except PositionAlreadyRecorded as taken:
            log.warning("dropping batch: %s; continuing at offset=%s", taken, taken.stored)
            self.stats.dropped += len(records) - (self.stats.consumed - consumed_before)
            self.positions.reseek(partition, taken.stored)
            return None
        next_offset: int = records[-1].offset + 1
        self.positions.next_offsets[partition] = next_offset
        return next_offset

    def _commit_alone(self, partition: Any, message: Message, stop: threading.Event) -> None:
        try:
            self._commit(partition, [message], stop)
        except (BatchAbandoned, PositionAlreadyRecorded):
            raise
        except Exception as error:
            record = message[0]
            self._commit(partition, [(record, DeadLetter.of(record, error))], stop)

    def _commit(self, partition: Any, messages: Sequence[Message], stop: threading.Event) -> None:
        """One transaction: `messages`' interactions, their dead letters (flushed first)
        and the partition's offset after the last of them."""
        name = self.positions.name(partition)
        tracking = Tracking(application_name=name, notification_id=messages[-1][0].offset + 1)
        valid = [(record, item) for record, item in messages if not isinstance(item, DeadLetter)]
        invalid = [item for _, item in messages if isinstance(item, DeadLetter)]
        sent: list[DeadLetter] = []

        def dead_letter_first(outcomes: Sequence[Outcome]) -> None:
            rejected = [
                DeadLetter.of(record, outcome)
                for (record, _), outcome in zip(valid, outcomes, strict=True)
                if isinstance(outcome, InteractionRejected)
            ]
            # This runs again when the transaction is retried (a version race, an
            # outage): what this process already sent and flushed is not sent twice.
            done = {letter.offset for letter in sent}
            fresh = [letter for letter in [*invalid, *rejected] if letter.offset not in done]
            self.dead_letters.send_all(sorted(fresh, key=lambda letter: letter.offset))
            sent.extend(fresh)

        items = [item for _, item in valid]
        outcomes = self.retrier(
            f"store {name} up to offset {tracking.notification_id}",
            lambda: self.ledger.record_batch(items, tracking, before_commit=dead_letter_first),
            stop,
        )
        self._count(len(messages), outcomes, sent)

    def _count(self, consumed: int, outcomes: Sequence[Outcome], sent: list[DeadLetter]) -> None:
        stats = self.stats
        stats.consumed += consumed
        stats.dead_lettered += len(sent)
        stats.batches += 1
        tally = IngestReport()  # the same reading of outcomes as a file's ingest
        for outcome in outcomes:
            tally.count(outcome)
        stats.recorded += tally.recorded
        stats.late += tally.late
        stats.duplicates += tally.duplicates
        stats.conflicts += tally.conflicts
        for letter in sent:
            log.info(
                "dead-lettered origin=%s[%s]@%s error=%s reason=%r",
                letter.topic,
                letter.partition,
                letter.offset,
                letter.code,
                letter.reason,
            )
