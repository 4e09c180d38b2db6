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
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError

from domain.fold.facts import Fact
from domain.fold.scorer import Scorer
from domain.fold.state import load_state
from domain.ledger import LoggedInteraction, RelationshipLedger, UnreadableRecord
from domain.policy import Policy
from projections.rows import Row, phase_rows, summary_row, trust_rows
from projections.tables import Generation
from projections.view import Page, RelationshipView

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

    @property
    def lag(self) -> int:
        return max(0, self.head - self.position)


@dataclass
class _Cache:
    """Bounded LRU of fold states, valid only for one (generation, position) lineage."""

    size: int
    scorers: OrderedDict[str, Scorer] = field(default_factory=OrderedDict)

    def get(self, relationship_id: str) -> Scorer | None:
        scorer = self.scorers.get(relationship_id)
        if scorer is not None:
            self.scorers.move_to_end(relationship_id)
        return scorer

    def put(self, relationship_id: str, scorer: Scorer) -> None:
        self.scorers[relationship_id] = scorer
        self.scorers.move_to_end(relationship_id)
        while len(self.scorers) > self.size:
            self.scorers.popitem(last=False)

    def clear(self) -> None:
        self.scorers.clear()


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
        self._cache = _Cache(cache_size)
        self._generation: Generation | None = None
        self._policy: Policy | None = None
        self._position = 0

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
                applied = self._apply_page(entries)
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
            report.events += applied
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

        A database outage does not end it: it waits (doubling up to a minute) and
        resumes from the stored position, which is where the last committed page left it.
        """
        pause = interval
        while not stop.is_set():
            try:
                report = self.catch_up(stop=stop)
            except (OperationalError, InterfaceError) as error:
                log.warning(
                    "projection paused, store unavailable (%s); retrying in %.1fs", error, pause
                )
                stop.wait(pause)
                pause = min(pause * 2, 60.0)
                continue
            pause = interval
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
        self._generation, self._policy, self._position = generation, policy, position

    def _apply_page(self, entries: list[LoggedInteraction | UnreadableRecord]) -> int:
        try:
            with self.view.transaction() as cursor:
                generation, policy = self._target(cursor)
                stored = self.view.position(cursor, generation)
                if generation != self._generation or stored != self._position:
                    self._adopt(generation, policy, stored)
                    raise _Moved
                page = self._fold(cursor, generation, policy, entries)
                self.view.write(cursor, generation, page)
        except _Moved:
            raise
        except BaseException:
            # The cached scorers already hold this page; if it did not commit (even if
            # only the COMMIT failed), they are ahead of the store and must go.
            self._cache.clear()
            raise
        self._position = page.position
        return len(entries)

    def _fold(
        self,
        cursor: Any,
        generation: Generation,
        policy: Policy,
        entries: list[LoggedInteraction | UnreadableRecord],
    ) -> Page:
        scorers = self._scorers_for(cursor, generation, policy, entries)
        trust: list[Row] = []
        phases: list[Row] = []
        last_position: dict[str, int] = {}
        reached = self._position
        for entry in entries:
            if isinstance(entry, UnreadableRecord):
                raise entry.problem()
            rid = entry.relationship_id
            scorer = scorers[rid]
            trust_before, phases_before = len(scorer.trust_changes), len(scorer.phase_changes)
            scorer.apply(Fact.from_record(entry.record))
            if len(scorer.trust_changes) > trust_before:
                trust += trust_rows(rid, entry.position, scorer.trust_changes[trust_before:])
            if len(scorer.phase_changes) > phases_before:
                phases += phase_rows(
                    rid, entry.position, scorer.phase_changes[phases_before:], policy.version
                )
            last_position[rid] = reached = entry.position
        summaries = []
        for rid, position in last_position.items():
            scorer = scorers[rid]
            scorer.trust_changes.clear()
            scorer.phase_changes.clear()
            summaries.append(summary_row(rid, scorer, position))
            self._cache.put(rid, scorer)
        return Page(reached, summaries, trust, phases)

    def _scorers_for(
        self,
        cursor: Any,
        generation: Generation,
        policy: Policy,
        entries: list[LoggedInteraction | UnreadableRecord],
    ) -> dict[str, Scorer]:
        scorers: dict[str, Scorer] = {}
        missing: dict[str, None] = {}
        for entry in entries:
            if isinstance(entry, UnreadableRecord):
                continue
            rid = entry.relationship_id
            if rid in scorers or rid in missing:
                continue
            cached = self._cache.get(rid)
            if cached is not None:
                scorers[rid] = cached
            else:
                missing[rid] = None
        states = self.view.load_states(cursor, generation, list(missing)) if missing else {}
        for rid in missing:
            state = states.get(rid)
            scorers[rid] = (
                Scorer(policy) if state is None else load_state(orjson.loads(state), policy)
            )
        return scorers
