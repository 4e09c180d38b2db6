"""Writing a page so that one relationship's refused rows never fail the others.

The page is written in one go under a savepoint: the common case costs two extra
statements per page. If the database refuses it (a value it cannot store), the
savepoint is rolled back and the rows are written again relationship by
relationship, each under its own savepoint. A relationship that still fails, or
whose event failed to fold, is salvaged: its events of the page are folded and
written one at a time from its stored state, up to the first that cannot be, and
that event is named in a quarantine record. Its rows then are exactly those before
the failing event, wherever the page boundaries fell.

Savepoints matter on both backends: on PostgreSQL a failed statement aborts the
whole transaction, and on either an `executemany` that fails half-way has already
written its first rows. Errors about the store itself (a lost connection, a lock,
a dropped table, a conflicting row) are never taken for a relationship's fault:
they fail the page as before.
"""

from __future__ import annotations

from typing import Any

import orjson

from domain.fold.facts import Fact
from domain.fold.scorer import Scorer
from domain.fold.state import load_state
from domain.policy import Policy
from domain.stored import LoggedInteraction
from projections.page import Page
from projections.quarantine import Quarantined
from projections.read_models import (
    PHASE_HISTORY,
    TRUST_HISTORY,
    history_rows,
    quarantine_row,
    summary_row,
)
from projections.tables import Generation
from projections.view import RelationshipView


def write_page(
    view: RelationshipView, cursor: Any, generation: Generation, policy: Policy, page: Page
) -> None:
    """The page's rows, then its quarantine records (the caller writes the position).
    Relationships whose rows are refused join `page.failed`; those salvage cannot take
    past an event join `page.quarantined`."""
    try:
        with view.savepoint(cursor, "relledger_page"):
            view.write_rows(cursor, generation, page.summaries, page.trust, page.phases)
    except Exception as error:
        if not view.is_row_problem(error):
            raise
        for rid, rows in page.by_relationship().items():
            try:
                with view.savepoint(cursor, "relledger_relationship"):
                    view.write_rows(cursor, generation, *rows)
            except Exception as refused:
                if not view.is_row_problem(refused):
                    raise
                page.failed[rid] = None
    for rid in page.failed:
        found = salvage(view, cursor, generation, policy, page.events_of(rid))
        if found is not None:
            page.quarantined.append(found)
    view.write_quarantine(cursor, generation, [quarantine_row(q) for q in page.quarantined])


def salvage(
    view: RelationshipView,
    cursor: Any,
    generation: Generation,
    policy: Policy,
    events: list[LoggedInteraction],
) -> Quarantined | None:
    """Fold and write one relationship's `events` one by one from its stored state, up
    to the first that cannot be folded or stored, and name that one (None if all went)."""
    rid = events[0].relationship_id
    try:
        with view.savepoint(cursor, "relledger_salvage"):
            state = view.load_states(cursor, generation, [rid]).get(rid)
        scorer = Scorer(policy) if state is None else load_state(orjson.loads(state), policy)
    except Exception as error:
        if not view.is_row_problem(error):
            raise
        return Quarantined.at(events[0], error, policy.version)
    for entry in events:
        try:
            scorer.apply(Fact.from_record(entry.record))
            rows = (
                [summary_row(rid, scorer, entry.position)],
                history_rows(TRUST_HISTORY, rid, entry.position, scorer.trust_changes),
                history_rows(PHASE_HISTORY, rid, entry.position, scorer.phase_changes),
            )
            scorer.trust_changes.clear()
            scorer.phase_changes.clear()
            with view.savepoint(cursor, "relledger_event"):
                view.write_rows(cursor, generation, *rows)
        except Exception as error:
            if not view.is_row_problem(error):
                raise
            return Quarantined.at(entry, error, policy.version)
    return None


def load_states(
    view: RelationshipView,
    cursor: Any,
    generation: Generation,
    relationship_ids: list[str],
    page: Page,
) -> dict[str, str]:
    """Stored fold states; if the database refuses the query (an id it cannot hold as
    text), one relationship at a time, and a refused one joins `page.failed`."""
    try:
        with view.savepoint(cursor, "relledger_states"):
            return view.load_states(cursor, generation, relationship_ids)
    except Exception as error:
        if not view.is_row_problem(error):
            raise
    states: dict[str, str] = {}
    for rid in relationship_ids:
        try:
            with view.savepoint(cursor, "relledger_state"):
                states.update(view.load_states(cursor, generation, [rid]))
        except Exception as error:
            if not view.is_row_problem(error):
                raise
            page.failed[rid] = None
    return states
