"""The ledger application: records batches of interactions and reads them back.

An `eventsourcing` Application, as in the library's bankaccounts example. It does
no I/O of its own: the library's infrastructure factory, configured from the
environment (SQLite or PostgreSQL), does. Consumers and projections both talk to
the store through this class, so it lives with the domain they share.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
)
from eventsourcing.domain import MutableOrImmutableAggregate
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    PersistenceError,
    ProcessRecorder,
    Tracking,
)
from eventsourcing.utils import get_topic

from domain.batch import BatchAttempt
from domain.batch import Outcome as Outcome
from domain.contract import Interaction
from domain.errors import Conflict, Damaged, NotFound
from domain.finding import Find, batch_finder
from domain.fold.facts import Fact
from domain.key_index import KeyIndex
from domain.relationship import SNAPSHOT_EVERY, Relationship, relationship_uuid
from domain.retry import retry_call
from domain.stored import (
    UNREADABLE,
    LoggedInteraction,
    LogReader,
    RelationshipReader,
    StoredInteraction,
    UnreadableRecord,
    unreadable,
)
from domain.text import one_line
from domain.transcoder import OrjsonTranscoder

STORE_OUTAGES: tuple[type[Exception], ...] = (OperationalError, InterfaceError)
"""The library's errors for a store that did not answer (down, restarting, locked, no
connection from the pool in time): a later attempt may succeed, so callers wait them
out with `domain.retry`, each with its own patience."""


class UnloadableRelationship(Damaged):
    """A relationship whose stored events no longer rebuild its aggregate (a record
    edited, retyped or moved behind relledger's back): nothing can be recorded to it."""

    def __init__(self, relationship_id: str, error: Exception) -> None:
        super().__init__(
            f"relationship {relationship_id!r} cannot be loaded from the store "
            f"({one_line(error)}): its stored events were altered; nothing was recorded "
            "from this batch; run relledger verify"
        )
        self.relationship_id = relationship_id


class UnknownRelationship(NotFound):
    def __init__(self, relationship_id: str) -> None:
        super().__init__(f"no relationship '{relationship_id}' in this ledger")
        self.relationship_id = relationship_id


class PositionAlreadyRecorded(Conflict):
    """The store is already at or past this consumer position: the batch is not ours.

    After a rebalance (or a member evicted for being slow) the new owner recorded
    it; nothing was stored by this call, and the caller re-reads from `stored`.
    """

    def __init__(self, name: str, wanted: int, stored: int) -> None:
        super().__init__(
            f"{name}: the store is already at position {stored}, at or past this "
            f"batch's {wanted}; another consumer recorded it"
        )
        self.name = name
        self.wanted = wanted
        self.stored = stored


class RelationshipLedger(Application[UUID]):
    """One aggregate per relationship; many relationships saved per transaction."""

    name = "relledger"
    env: ClassVar[dict[str, str]] = {
        "TRANSCODER_TOPIC": get_topic(OrjsonTranscoder),
        # Batches touch the same relationships again and again: keep them in memory.
        # Safe with concurrent writers: a stale aggregate fails the version check on
        # save, is evicted and the batch is decided again (see `record_batch`).
        "AGGREGATE_CACHE_MAXSIZE": "20000",
        "AGGREGATE_CACHE_FASTFORWARD": "n",
        "DEEPCOPY_FROM_AGGREGATE_CACHE": "n",
    }
    snapshotting_intervals: ClassVar[dict[type[MutableOrImmutableAggregate[Any]], int]] = {
        Relationship: SNAPSHOT_EVERY
    }
    """A relationship not in the cache loads from its latest snapshot and the events after
    it: at most `SNAPSHOT_EVERY` - 1, however long its history."""

    write_conflict_patience_s: float = 300.0
    """How long `record_batch` keeps deciding again after losing version races."""

    def construct_recorder(self) -> ProcessRecorder:
        """A process recorder, so a consumer's position (a `Tracking`) can commit in the
        same transaction as the events it produced: the library's exactly-once idiom."""
        return self.factory.process_recorder()

    @property
    def positions(self) -> ProcessRecorder:
        """Where each upstream consumer has got to (`max_tracking_id(name)`)."""
        assert isinstance(self.recorder, ProcessRecorder)
        return self.recorder

    def record_batch(
        self,
        items: Sequence[Interaction],
        tracking: Tracking | None = None,
        before_commit: Callable[[Sequence[Outcome]], None] | None = None,
    ) -> list[Outcome]:
        """Record every acceptable interaction in one transaction.

        Returns one outcome per item, in order: recorded, late, duplicate, or the
        rejection naming the field. A rejected item changes nothing; a failed save
        changes nothing at all. `tracking` commits a consumer's position atomically
        with the events; `before_commit(outcomes)` runs once everything is decided and
        before anything is stored (a consumer sends its dead letters there), and if
        it raises, nothing is stored.

        Another writer saving one of these relationships first makes the save fail
        the optimistic version check: the batch is then decided again against what
        that writer stored, after a jittered wait, for up to
        `write_conflict_patience_s` seconds (writers of the same relationships take
        turns; none gives up after one collision).

        Raises `PositionAlreadyRecorded` when the store already holds `tracking`'s
        position or a later one: another consumer recorded this batch.
        """
        return retry_call(
            lambda: self._record_once(items, tracking, before_commit),
            what="record a batch",
            retry_on=(IntegrityError,),
            give_up_after=self.write_conflict_patience_s,
        )

    def _record_once(
        self,
        items: Sequence[Interaction],
        tracking: Tracking | None,
        before_commit: Callable[[Sequence[Outcome]], None] | None,
    ) -> list[Outcome]:
        attempt = BatchAttempt(items, self.key_index, self._finder(items))
        try:
            outcomes = [attempt.decide(item) for item in items]
            if before_commit is not None:
                before_commit(outcomes)
            self._save(attempt, tracking)
        except IntegrityError:
            # Another writer saved one of these relationships first (the optimistic
            # version check) or one of these keys, or stored this consumer position:
            # forget what we hold, and let the retry decide again against what it stored.
            self._forget(attempt.touched)
            self._check_position(tracking)
            raise
        except BaseException:
            self._forget(attempt.touched)
            raise
        return outcomes

    def _check_position(self, tracking: Tracking | None) -> None:
        if tracking is None:
            return
        stored = self.positions.max_tracking_id(tracking.application_name)
        if stored is not None and stored >= tracking.notification_id:
            raise PositionAlreadyRecorded(
                tracking.application_name, tracking.notification_id, stored
            )

    def _save(self, attempt: BatchAttempt, tracking: Tracking | None) -> None:
        """`Application.save`, plus the optional tracking record (as the library's
        process applications do) and the attempt's key rows, so events, keys and a
        consumer position commit together; then the snapshots that are due."""
        processing: ProcessingEvent[UUID] = ProcessingEvent(tracking=tracking)
        for aggregate in attempt.touched.values():
            # What `collect_events` does, minus its two runtime Protocol checks per
            # aggregate (slow on Python 3.11, and we know these are aggregates).
            processing.events.extend(aggregate.collect_events())
            processing.aggregates[aggregate.id] = aggregate
        processing.saved_kwargs.update(
            recorded_keys=list(attempt.new_keys.values()), retracted_keys=attempt.retracted
        )
        recordings = self._record(processing)
        # The batch is committed: a snapshot that fails now (another writer took the same
        # one, the store went away) must not make it look failed, and retried into
        # "duplicates". Snapshots only save reading: the next one due is taken as usual.
        with suppress(PersistenceError):
            self._take_snapshots(processing)
        self._notify(recordings)

    @property
    def key_index(self) -> KeyIndex:
        """The keys already recorded: the store's recorder keeps them beside the events."""
        recorder = self.recorder
        if not isinstance(recorder, KeyIndex):
            raise TypeError(f"{type(recorder).__name__} keeps no key index")
        return recorder

    def _finder(self, items: Sequence[Interaction]) -> Find:
        return batch_finder(
            items,
            cache=self.repository.cache,
            reader=self.relationship_reader,
            mapper=self.mapper,
            find_one=self._find,
        )

    @property
    def relationship_reader(self) -> RelationshipReader:
        """Many relationships' heads and events at once: the store's recorder reads them."""
        recorder = self.recorder
        if not isinstance(recorder, RelationshipReader):
            raise TypeError(f"{type(recorder).__name__} reads no relationships in bulk")
        return recorder

    def _find(self, relationship_id: str, aggregate_id: UUID) -> Relationship | None:
        try:
            found: Relationship = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        except PersistenceError:
            raise  # the store's own errors: an outage is waited out by the caller
        except Exception as error:
            # The library rebuilds the aggregate from its stored events: one whose topic
            # names another event class, or whose state was edited, fails in there with
            # whatever that class raises (an assertion, a missing attribute, a bad topic).
            raise UnloadableRelationship(relationship_id, error) from error
        return found

    def _forget(self, touched: dict[UUID, Relationship]) -> None:
        """Drop aggregates whose in-memory state may be ahead of (or behind) the store."""
        cache = self.repository.cache
        if cache is None:
            return
        for aggregate_id in touched:
            with suppress(KeyError):
                cache.get(aggregate_id, evict=True)

    def history(self, relationship_id: str, *, upto: int | None = None) -> list[StoredInteraction]:
        """A relationship's interactions in recorded order (the first `upto`, if given)."""
        aggregate_id = relationship_uuid(relationship_id)
        rows = self.recorder.select_events(aggregate_id, lte=upto)
        if not rows:
            raise UnknownRelationship(relationship_id)
        stored = []
        for row in rows:
            try:
                stored.append(
                    self._stored(aggregate_id, row.originator_version, row.topic, row.state)
                )
            except UNREADABLE as error:
                raise unreadable(row, error).problem() from None
        return stored

    def chain(self, aggregate_id: UUID) -> list[StoredInteraction | UnreadableRecord]:
        """Every stored event of one aggregate in version order, a record that no longer
        decodes included as such: what verification reads, which must report a damaged
        record rather than stop at it (`history` stops)."""
        found: list[StoredInteraction | UnreadableRecord] = []
        for row in self.recorder.select_events(aggregate_id):
            try:
                found.append(
                    self._stored(aggregate_id, row.originator_version, row.topic, row.state)
                )
            except UNREADABLE as error:
                found.append(unreadable(row, error))
        return found

    def facts_before(self, relationship_id: str, version: int) -> list[Fact]:
        """What the relationship recorded before `version`, as the folds read it: what a
        retraction at `version` refolds (the fold state holds no history)."""
        return [stored.fact() for stored in self.history(relationship_id, upto=version - 1)]

    def _stored(
        self, aggregate_id: UUID, version: int, topic: str, state: bytes
    ) -> StoredInteraction:
        """A stored event's state decoded with the application's transcoder, without
        building a domain event object: replays and scans of many events read faster."""
        decoded = self._decode(state)
        record = decoded["interaction"]
        return StoredInteraction(
            relationship_id=record["relationship_id"],
            aggregate_id=aggregate_id,
            version=version,
            record=record,
            late=decoded.get("late", False),
            chain_hash=decoded["chain_hash"],
            recorded_at=decoded["timestamp"],
            topic=topic,
        )

    def _decode(self, state: bytes) -> dict[str, Any]:
        """Stored event state as a dict, through the application's own mapper settings."""
        if self.mapper.cipher:
            state = self.mapper.cipher.decrypt(state)
        if self.mapper.compressor:
            state = self.mapper.compressor.decompress(state)
        decoded: dict[str, Any] = self.mapper.transcoder.decode(state)
        return decoded

    def scan(self, page_size: int = 2000) -> Iterator[StoredInteraction | UnreadableRecord]:
        """Every stored interaction of every relationship, in recorded order, page by page."""
        start = 1
        while True:
            page = self.recorder.select_notifications(start=start, limit=page_size)
            for notification in page:
                try:
                    yield self._stored(
                        UUID(str(notification.originator_id)),
                        notification.originator_version,
                        notification.topic,
                        notification.state,
                    )
                except UNREADABLE as error:
                    yield unreadable(notification, error, notification.id)
            if len(page) < page_size:
                return
            start = page[-1].id + 1

    def read_log(
        self, after: int, limit: int, until: int | None = None
    ) -> list[LoggedInteraction | UnreadableRecord]:
        """The next page of the notification log after position `after` (up to `until`),
        for projections: only each interaction record, its position and version, read
        straight from the events table (the projector's hot loop)."""
        reader = self.recorder
        if not isinstance(reader, LogReader):
            raise TypeError(f"{type(reader).__name__} reads no log rows")
        entries: list[LoggedInteraction | UnreadableRecord] = []
        for position, originator_id, version, state in reader.log_rows(after, limit, until):
            try:
                record = self._decode(state)["interaction"]
                entries.append(
                    LoggedInteraction(position, record["relationship_id"], record, version)
                )
            except UNREADABLE as error:
                entries.append(UnreadableRecord(UUID(originator_id), version, str(error), position))
        return entries

    def head(self) -> int:
        """The position of the last recorded interaction (0 for an empty ledger)."""
        return self.recorder.max_notification_id() or 0
