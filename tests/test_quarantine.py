"""Poison events never stop the read side: the relationship is quarantined, the rest go on.

The events here are written past the contract on purpose, as an older contract may
have let them in: a valid interaction is parsed, then copied with one field the
contract now refuses (`model_copy` does not validate), and recorded through the
ledger as any other. Every store test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from eventsourcing.persistence import OperationalError
from read_models import assert_answers_as_folded
from typer.testing import CliRunner

from domain.contract import Interaction, parse_interaction
from domain.ledger import RelationshipLedger
from domain.relationship import relationship_uuid
from projections import queries
from projections.projector import CatchUp, Projector
from projections.rebuild import rebuild
from projections.replay import replay_relationship
from projections.view import RelationshipView, open_view
from relledger.cli import app
from service.policies import load_policy
from service.schema import migrate
from service.store import open_ledger

RECEIVED = datetime(2030, 1, 1, tzinfo=UTC)
YEAR_ONE = datetime(1, 1, 1, tzinfo=UTC)
GOOD = ("alpha", "beta", "gamma")


def _interaction(rid: str, event_id: str, day: int, **past_contract: Any) -> Interaction:
    """A valid purchase, then (if asked) fields the contract refuses put in place."""
    valid = parse_interaction(
        {
            "event_id": "placeholder",
            "source": "crm",
            "relationship_id": "placeholder",
            "occurred_at": f"2024-01-{day:02d}T10:00:00Z",
            "kind": "purchase",
            "actor": "customer",
            "parties": {"supplier": "acme", "customer": "bistro"},
            "amount": "120.50",
            "currency": "EUR",
            "outcome": "met",
        },
        received_at=RECEIVED,
    )
    update = {"relationship_id": rid, "event_id": event_id, **past_contract}
    return valid.model_copy(update=update)


def _record_with_poison(ledger: RelationshipLedger, poison: list[Interaction]) -> None:
    """Good events for GOOD before the poison and after it, in several batches."""
    ledger.record_batch([_interaction(rid, f"{rid}-1", 1) for rid in GOOD])
    ledger.record_batch([_interaction("middling", "middling-1", 2)])
    ledger.record_batch(poison)
    for day in (3, 4):
        ledger.record_batch([_interaction(rid, f"{rid}-{day}", day) for rid in GOOD])
    later = [_interaction("middling", "middling-5", 5)]
    later += [_interaction(item.relationship_id, f"after-{day}", day) for item in poison]
    ledger.record_batch(later)


def _project(ledger: RelationshipLedger, page_size: int) -> tuple[RelationshipView, CatchUp]:
    view = open_view(ledger)
    view.ensure_live(load_policy())
    return view, Projector(ledger, view, page_size=page_size).catch_up()


def _assert_as_folded(
    ledger: RelationshipLedger, view: RelationshipView, rid: str, upto: int | None = None
) -> None:
    """The read models of `rid` equal a fold of its stored events alone (the first `upto`)."""
    assert_answers_as_folded(view, replay_relationship(ledger, rid, load_policy(), upto=upto))


def _position_of(ledger: RelationshipLedger, event_id: str) -> int:
    entries = ledger.read_log(0, 1000)
    return next(e.position for e in entries if e.record["event_id"] == event_id)  # type: ignore[union-attr]


@pytest.mark.parametrize("page_size", [1, 4, 1000])
def test_a_year_one_event_quarantines_its_relationship_and_only_it(
    ledger: RelationshipLedger, page_size: int
) -> None:
    poison = [
        _interaction("ancient", "ancient-1", 1, occurred_at=YEAR_ONE),  # its first event
        _interaction("middling", "middling-nan", 3, amount=Decimal("NaN")),  # after one
    ]
    _record_with_poison(ledger, poison)
    view, report = _project(ledger, page_size)

    assert report.position == ledger.head()
    for rid in GOOD:
        _assert_as_folded(ledger, view, rid)
    _assert_as_folded(ledger, view, "middling", upto=1)  # as before the failing event

    ancient = queries.quarantined(view, "ancient")
    assert ancient is not None
    assert (ancient.position, ancient.event_id) == (_position_of(ledger, "ancient-1"), "ancient-1")
    assert ancient.reason == "OverflowError: date value out of range"
    assert ancient.policy == "v1"
    middling = queries.quarantined(view, "middling")
    assert middling is not None and middling.event_id == "middling-nan"
    assert middling.reason.startswith("InvalidOperation")
    assert {q.relationship_id for q in report.quarantined} == {"ancient", "middling"}

    status = queries.status(view, ledger)
    assert (status.lag, status.quarantined) == (0, 2)
    assert [q.relationship_id for q in status.quarantine] == ["ancient", "middling"]
    # Quarantined without any row: show still answers, with no figures.
    assert queries.standing(view, "ancient") == {
        "relationship_id": "ancient",
        "quarantined": ancient.view(),
    }
    assert queries.standing(view, "middling")["quarantined"] == middling.view()  # type: ignore[index]
    assert "quarantined" not in (queries.standing(view, "alpha") or {})
    # Later pages skip the quarantined relationships and keep the others current.
    ledger.record_batch([_interaction(rid, f"{rid}-9", 9) for rid in (*GOOD, "middling")])
    assert Projector(ledger, view, page_size=page_size).catch_up().quarantined == []
    _assert_as_folded(ledger, view, "alpha")
    _assert_as_folded(ledger, view, "middling", upto=1)


def test_a_nul_in_an_id_is_quarantined_where_the_database_refuses_it(
    ledger: RelationshipLedger, store_url: str
) -> None:
    """PostgreSQL stores no NUL in text: neither as a relationship_id (the state lookup
    and the rows fail) nor as an event_id (the history rows fail, after earlier ones)."""
    poison = [
        _interaction("nul\x00id", "nul-1", 1),
        _interaction("middling", "middling-\x00", 3),
    ]
    _record_with_poison(ledger, poison)
    view, report = _project(ledger, page_size=1000)

    assert report.position == ledger.head()
    for rid in GOOD:
        _assert_as_folded(ledger, view, rid)
    if not store_url.startswith("postgresql"):  # SQLite keeps the NUL: nothing to set aside
        assert report.quarantined == []
        _assert_as_folded(ledger, view, "nul\x00id")
        _assert_as_folded(ledger, view, "middling")
        return
    held = queries.quarantined(view, "nul\x00id")
    assert held is not None
    assert held.relationship_id == "nul\\x00id"  # escaped, so it can be stored
    assert held.aggregate_id == relationship_uuid("nul\x00id")
    assert held.reason.startswith("DataError") and "NUL" in held.reason
    middling = queries.quarantined(view, "middling")
    assert middling is not None and middling.event_id == "middling-\\x00"
    assert middling.position == _position_of(ledger, "middling-\x00")
    _assert_as_folded(ledger, view, "middling", upto=1)
    listed = queries.status(view, ledger).quarantine
    assert [q.relationship_id for q in listed] == ["nul\\x00id", "middling"]


def test_a_rebuild_tries_again_and_reports_what_is_still_quarantined(
    ledger: RelationshipLedger,
) -> None:
    _record_with_poison(ledger, [_interaction("ancient", "ancient-1", 1, occurred_at=YEAR_ONE)])
    view, _ = _project(ledger, page_size=3)
    checked = rebuild(ledger, view, check=True)  # page size 10,000: the same rows
    assert checked.differences == [] and not checked.switched
    assert [q.relationship_id for q in checked.quarantined] == ["ancient"]

    report = rebuild(ledger, view)  # the events never change: still quarantined
    assert report.switched and report.differences == []
    assert [q.relationship_id for q in report.quarantined] == ["ancient"]
    assert report.view()["quarantined"] == 1
    assert "1 still quarantined" in report.summary()
    status = queries.status(view, ledger)
    assert (status.generation, status.quarantined) == (report.new_generation, 1)

    # A quarantine the live generation has and a fresh fold has not is a difference.
    live = view.generation(view.require_live().generation)
    with view.transaction() as cursor:
        cursor.execute(
            view.dialect.sql(f"DELETE FROM {live.table('quarantine')}"),
        )
        cursor.execute(
            view.dialect.sql(
                f"INSERT INTO {live.table('quarantine')} VALUES (?, 'alpha', 1, 'alpha-1', "
                "'made up', 'v1')"
            ),
            [str(relationship_uuid("alpha"))],
        )
    differing = rebuild(ledger, view, check=True).differences
    assert sorted(str(d) for d in differing) == [
        "alpha: quarantined in the live read models, but a fresh fold gets past it",
        "ancient: quarantined by a fresh fold, not in the live read models "
        "(OverflowError: date value out of range)",
    ]


def test_the_cli_projects_past_a_poison_event_and_says_so(store_url: str) -> None:
    ledger = open_ledger(store_url)
    _record_with_poison(ledger, [_interaction("ancient", "ancient-1", 1, occurred_at=YEAR_ONE)])
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        result = runner.invoke(app, ["--db", store_url, *args])
        assert result.exit_code == 0, result.output + (result.stderr or "")
        return result

    projected = invoke("project")
    head = ledger.head()
    assert f"read models at position {head} ({head} events applied; 1 quarantined)" in (
        projected.stdout
    )
    assert "quarantined ancient at position" in projected.stderr
    assert "OverflowError" in projected.stderr

    status = orjson.loads(invoke("projections", "status", "--json").stdout)
    assert (status["lag"], status["quarantined"]) == (0, 1)
    (held,) = status["quarantine"]
    assert held["relationship_id"] == "ancient" and held["event_id"] == "ancient-1"
    assert held["position"] == _position_of(ledger, "ancient-1")
    assert held["reason"] == "OverflowError: date value out of range"
    assert "1 quarantined" in invoke("projections", "status").stdout

    shown = orjson.loads(invoke("show", "ancient", "--json").stdout)
    assert shown == {"relationship_id": "ancient", "quarantined": held}
    assert "quarantined at position" in invoke("show", "ancient").stdout
    healthy = invoke("show", "alpha", "--json")
    assert "quarantined" not in orjson.loads(healthy.stdout)
    assert "1 relationship(s) quarantined" in healthy.stderr

    rebuilt = orjson.loads(invoke("projections", "rebuild", "--json").stdout)
    assert rebuilt["switched"] and rebuilt["quarantined"] == 1
    assert rebuilt["quarantine"][0]["relationship_id"] == "ancient"

    replayed = runner.invoke(app, ["--db", store_url, "replay", "ancient"])
    assert replayed.exit_code == 3  # the audit cannot fold it either, and says why
    assert replayed.stderr == (
        "error: 'ancient' cannot be replayed: its stored events fail to fold (OverflowError: "
        "date value out of range); relledger projections status lists where\n"
    )


def test_an_older_store_gains_the_quarantine_table_when_migrated(
    ledger: RelationshipLedger, store_url: str
) -> None:
    view, _ = _project(ledger, page_size=10)
    live = view.generation(view.require_live().generation)
    with view.transaction() as cursor:  # as a version without quarantine left it
        cursor.execute(f"DROP VIEW {view.dialect.name('quarantined_relationships')}")
        cursor.execute(f"DROP TABLE {live.table('quarantine')}")
    migrate(store_url)
    again = open_ledger(store_url)
    reopened = open_view(again)
    _record_with_poison(again, [_interaction("ancient", "ancient-1", 1, occurred_at=YEAR_ONE)])
    assert Projector(again, reopened).catch_up().position == again.head()
    assert queries.status(reopened, again).quarantined == 1


def test_a_follower_waits_out_an_outage_logging_each_retry(
    ledger: RelationshipLedger, caplog: pytest.LogCaptureFixture
) -> None:
    view, _ = _project(ledger, page_size=10)
    projector = Projector(ledger, view)
    stop = threading.Event()
    failures = iter([OperationalError("connection refused"), OperationalError("still down")])
    real = projector.catch_up
    reports: list[CatchUp] = []

    def flaky(**kwargs: Any) -> CatchUp:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return real(**kwargs)

    def caught_up(report: CatchUp) -> None:
        reports.append(report)
        stop.set()

    projector.catch_up = flaky  # type: ignore[method-assign,assignment]
    with caplog.at_level(logging.WARNING, logger="relledger.projections"):
        projector.follow(stop, interval=0.01, on_caught_up=caught_up)
    paused = [r.getMessage() for r in caplog.records if "projection paused" in r.getMessage()]
    assert len(paused) == 2
    assert "connection refused" in paused[0] and "retry 1 in" in paused[0]
    assert "still down" in paused[1] and "retry 2 in" in paused[1]
    assert len(reports) == 1

    def down_for_good(**kwargs: Any) -> CatchUp:
        stop.set()
        raise OperationalError("down for good")

    # A stop during an outage ends the follower without an error.
    projector.catch_up = down_for_good  # type: ignore[method-assign,assignment]
    stop.clear()
    projector.follow(stop, interval=0.01)
