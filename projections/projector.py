"""Follows the ledger's notification log and keeps a generation of read models current.

The library's push subscriptions do not exist for SQLite, so this reads the log
in pages (the same on both backends) and, between pages, sleeps when following.
Each page is one transaction: lock the projection, check that nobody else moved
it since this process last wrote (else resynchronise), fold the page into the
touched relationships, write their rows and the new position.

Fold states of recently touched relationships stay in a bounded cache, so a busy
relationship is not decoded again for every page; the cache is only trusted while
this process is the one that wrote the last page. Memory stays flat however long
the log is: the cache is bounded and each page's rows are written and dropped.

A relationship whose event cannot be folded, or whose rows the database refuses,
is quarantined (`projections.quarantine`) and the page goes on without it. The
common case pays next to nothing for that: a failed fold is caught where it
happens, and the page is written in one go under a savepoint
(`projections.salvage` says what happens when the database refuses it).

A retraction refolds its relationship from the ledger's history (the fold state
holds none): the rows already written stay, and the step to the corrected figures
is one more history row, exactly as a rebuild from zero writes it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import IntegrityError

from domain.fold.facts import Fact
from domain.fold.scorer import Scorer
from domain.fold.state import load_state
from domain.ledger import STORE_OUTAGES, RelationshipLedger
from domain.policy import Policy
from domain.relationship import relationship_uuid
from domain.retry import RetryNotice, retry_call
from domain.stored import LoggedInteraction, UnreadableRecord
from projections.page import FoldCache, Page
from projections.quarantine import Quarantined
from projections.read_models import PHASE_HISTORY, TRUST_HISTORY, history_rows, summary_row
from projections.salvage import load_states, write_page
from projections.tables import Generation
from projections.view import RelationshipView

Progress = Callable[[int, int], None]
log = logging.getLogger("relledger.projections")


@dataclass
class CatchUp:
    """What one catch-up did: pages and events applied, and where it stopped."""

    position: int = 0
    head: int = 0
    events: int = 0
    pages: int = 0
    resyncs: int = 0
    quarantined: list[Quarantined] = field(default_factory=list)
    """Relationships this run quarantined (not those quarantined before it)."""

    @property
    def lag(self) -> int:
        return max(0, self.head - self.position)


"""What a follower waits out: the store is unreachable, restarting or locked."""


def _paused(notice: RetryNotice) -> None:
    log.warning(
        "projection paused, store unavailable (%s); retry %d in %.1fs",
        notice.error,
        notice.attempt,
        notice.wait_s,
    )


class _Moved(Exception):
    """Someone else wrote this projection since we last did: start again from theirs."""


class Projector:
    """Projects the log into one generation: the live one, or a rebuild's new one."""

    def __init__(
        self,
        ledger: RelationshipLedger,
        view: RelationshipView,
        *,
        target: tuple[Generation, Policy] | None = None,
        page_size: int = 10_000,
        cache_size: int = 20_000,
    ) -> None:
        self.ledger = ledger
        self.view = view
        self.page_size = page_size
        self._fixed = target
        self._cache = FoldCache(cache_size)
        self._generation: Generation | None = None
        self._policy: Policy | None = None
        self._position = 0
        self._quarantined: set[UUID] | None = None  # None: to be read with the next page

    @property
    def position(self) -> int:
        return self._position

    def catch_up(
        self,
        until: int | None = None,
        on_progress: Progress | None = None,
        stop: threading.Event | None = None,
    ) -> CatchUp:
        """Apply every recorded interaction up to `until` (default: the head when called).

        `stop` ends it between two pages (each page is committed whole or not at all).
        """
        report = CatchUp(head=self.ledger.head() if until is None else until)
        self._sync()
        while self._position < report.head and not (stop is not None and stop.is_set()):
            entries = self.ledger.read_log(self._position, self.page_size, until=report.head)
            if not entries:
                break
            try:
                page = self._apply_page(entries)
            except _Moved:
                report.resyncs += 1
                continue
            except IntegrityError:
                # Normally a writer that committed this page first: resync and go on.
                # If the stored position did not move, the rows themselves conflict (a
                # damaged store): spinning on it would help nobody.
                was = self._position
                self._sync()
                if self._position == was:
                    raise
                report.resyncs += 1
                continue
            report.events += len(entries)
            report.quarantined += page.quarantined
            report.pages += 1
            if on_progress is not None:
                on_progress(self._position, report.head)
        report.position = self._position
        return report

    def follow(
        self,
        stop: threading.Event,
        interval: float = 0.5,
        on_caught_up: Callable[[CatchUp], None] | None = None,
    ) -> None:
        """Keep catching up until `stop` is set; polls the log every `interval` seconds.

        A database outage does not end it: it waits (jittered, doubling up to a minute,
        through `domain.retry`) and resumes from the stored position, which is where the
        last committed page left it.
        """
        while not stop.is_set():
            try:
                report = retry_call(
                    lambda: self.catch_up(stop=stop),
                    what="project the log",
                    retry_on=STORE_OUTAGES,
                    give_up_after=None,
                    initial_wait=interval,
                    max_wait=60.0,
                    stop=stop,
                    on_retry=_paused,
                )
            except STORE_OUTAGES:
                if stop.is_set():
                    return
                raise
            if on_caught_up is not None:
                on_caught_up(report)
            if report.events == 0:
                stop.wait(interval)

    def _sync(self) -> None:
        """Learn the generation, policy and position from the store (dropping the cache)."""
        with self.view.transaction() as cursor:
            generation, policy = self._target(cursor)
            self._adopt(generation, policy, self.view.position(cursor, generation))

    def _target(self, cursor: Any) -> tuple[Generation, Policy]:
        live = self.view.claim(cursor)  # taken by every writer, so they never interleave
        if self._fixed is not None:
            return self._fixed
        if self._generation is not None and self._generation.number == live.generation:
            assert self._policy is not None
            return self._generation, self._policy
        return self.view.generation(live.generation), live.policy()

    def _adopt(self, generation: Generation, policy: Policy, position: int) -> None:
        if (generation, position) != (self._generation, self._position):
            self._cache.clear()
            self._quarantined = None
        self._generation, self._policy, self._position = generation, policy, position

    def _apply_page(self, entries: list[LoggedInteraction | UnreadableRecord]) -> Page:
        try:
            with self.view.transaction() as cursor:
                generation, policy = self._target(cursor)
                stored = self.view.position(cursor, generation)
                if generation != self._generation or stored != self._position:
                    self._adopt(generation, policy, stored)
                    raise _Moved
                if self._quarantined is None:
                    self._quarantined = self.view.quarantined(cursor, generation)
                page = self._fold(cursor, generation, policy, entries)
                self._write(cursor, generation, policy, page)
        except _Moved:
            raise
        except BaseException:
            # The cached scorers already hold this page; if it did not commit (even if
            # only the COMMIT failed), they are ahead of the store and must go, and so
            # must the quarantines this page added.
            self._cache.clear()
            self._quarantined = None
            raise
        self._position = page.position
        for found in page.quarantined:
            log.warning("quarantined %s", found)
        return page

    def _fold(
        self,
        cursor: Any,
        generation: Generation,
        policy: Policy,
        entries: list[LoggedInteraction | UnreadableRecord],
    ) -> Page:
        """Fold the page; a relationship whose event fails to fold is left to `salvage`."""
        page = Page(entries, self._position)
        histories: dict[str, list[Fact]] = {}
        scorers = self._scorers_for(cursor, generation, policy, page)
        trust, phases, failed = page.trust, page.phases, page.failed
        last_position: dict[str, int] = {}
        reached = self._position
        unreadable: set[UUID] = set()
        for entry in entries:
            if isinstance(entry, UnreadableRecord):
                # Its relationship cannot go on without it: set aside from here on.
                page.quarantined.append(Quarantined.unreadable(entry, policy.version))
                unreadable.add(entry.aggregate_id)
                reached = entry.position or reached
                continue
            rid, reached = entry.relationship_id, entry.position
            if unreadable and relationship_uuid(rid) in unreadable:
                continue  # its rows stay as they were before the unreadable record
            scorer = scorers.get(rid)
            if scorer is None:  # quarantined, or failed earlier in this page
                continue
            trust_before, phases_before = len(scorer.trust_changes), len(scorer.phase_changes)
            try:
                fact = Fact.from_record(entry.record)
                scorer.apply(fact, partial(self._facts_before, histories, rid, entry.version))
            except Exception:
                del scorers[rid]
                failed[rid] = None
                continue
            if len(scorer.trust_changes) > trust_before:
                trust += history_rows(
                    TRUST_HISTORY, rid, entry.position, scorer.trust_changes[trust_before:]
                )
            if len(scorer.phase_changes) > phases_before:
                phases += history_rows(
                    PHASE_HISTORY, rid, entry.position, scorer.phase_changes[phases_before:]
                )
            last_position[rid] = entry.position
        for rid, position in last_position.items():
            scorer = scorers.get(rid)
            if scorer is None:
                continue
            scorer.trust_changes.clear()
            scorer.phase_changes.clear()
            try:
                page.summaries.append(summary_row(rid, scorer, position))
            except Exception:
                failed[rid] = None
                continue
            self._cache.put(rid, scorer)
        page.position = reached
        if failed:
            page.drop(failed)
            self._cache.forget(failed)
        return page

    def _facts_before(
        self, histories: dict[str, list[Fact]], relationship_id: str, version: int
    ) -> list[Fact]:
        """What a retraction at `version` refolds: its relationship's history, read from
        the ledger once per page however many retractions the page holds for it."""
        history = histories.get(relationship_id)
        if history is None:
            history = histories[relationship_id] = [
                stored.fact() for stored in self.ledger.history(relationship_id)
            ]
        return history[: version - 1]

    def _write(self, cursor: Any, generation: Generation, policy: Policy, page: Page) -> None:
        write_page(self.view, cursor, generation, policy, page)
        self._cache.forget(page.failed)  # their cached states may hold what was not written
        self.view.write_position(cursor, generation, page.position)
        assert self._quarantined is not None
        self._quarantined.update(q.aggregate_id for q in page.quarantined)

    def _is_quarantined(self, relationship_id: str) -> bool:
        if not self._quarantined:  # the common case: no UUID to work out
            return False
        return relationship_uuid(relationship_id) in self._quarantined

    def _scorers_for(
        self,
        cursor: Any,
        generation: Generation,
        policy: Policy,
        page: Page,
    ) -> dict[str, Scorer]:
        """The fold state of each relationship in the page, from the cache or the store;
        none for a quarantined relationship, nor for one whose stored state fails to load
        (that one is left to `salvage`, which names the error)."""
        scorers: dict[str, Scorer] = {}
        missing: dict[str, None] = {}
        skipped: set[str] = set()
        for entry in page.entries:
            if isinstance(entry, UnreadableRecord):
                continue
            rid = entry.relationship_id
            if rid in scorers or rid in missing or rid in skipped:
                continue
            if self._is_quarantined(rid):
                skipped.add(rid)
                continue
            cached = self._cache.get(rid)
            if cached is not None:
                scorers[rid] = cached
            else:
                missing[rid] = None
        states = load_states(self.view, cursor, generation, list(missing), page) if missing else {}
        for rid in missing:
            if rid in page.failed:
                continue
            state = states.get(rid)
            try:
                scorers[rid] = (
                    Scorer(policy) if state is None else load_state(orjson.loads(state), policy)
                )
            except Exception:
                page.failed[rid] = None
        return scorers
