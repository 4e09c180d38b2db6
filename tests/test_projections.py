"""Read models on both backends: equal to a fresh replay, restart-safe, rebuildable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from eventsourcing.persistence import IntegrityError, OperationalError, ProgrammingError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from read_models import assert_answers_as_folded
from test_replay_properties import _stream, step
from typer.testing import CliRunner

from consumers.jsonl import ingest_lines
from domain.errors import PolicyError
from domain.fold.records import Phase
from domain.ledger import RelationshipLedger
from projections import queries
from projections.projector import Projector
from projections.rebuild import rebuild
from projections.replay import replay_all
from projections.view import RelationshipView, open_view
from relledger.cli import app
from relledger.simulate import simulate
from service.policies import load_policy
from service.store import open_ledger

DATA = Path(__file__).parent / "data"


def _project(ledger: RelationshipLedger, page_size: int = 2000) -> RelationshipView:
    view = open_view(ledger)
    view.ensure_live(load_policy())
    Projector(ledger, view, page_size=page_size).catch_up()
    return view


def _assert_equal_to_replay(ledger: RelationshipLedger, view: RelationshipView) -> int:
    """Every relationship's read-model answers equal a fresh fold of its stored events."""
    policy = view.require_live().policy()
    count = 0
    for found in replay_all(ledger, policy):
        assert "quarantined" not in (queries.standing(view, found.relationship_id) or {})
        assert_answers_as_folded(view, found)
        count += 1
    assert queries.list_relationships(view, limit=1).total == count
    return count


def _simulated(path: Path, relationships: int, events: int, seed: int = 3) -> Path:
    path.write_bytes(
        b"\n".join(orjson.dumps(e) for e in simulate(relationships, events, seed=seed)) + b"\n"
    )
    return path


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(step, min_size=1, max_size=60),
    batch=st.integers(1, 25),
    page=st.integers(1, 40),
    catch_up_every=st.integers(1, 4),
)
def test_read_models_equal_a_fresh_replay_after_any_interleaving(
    ledger: RelationshipLedger, steps: list[dict], batch: int, page: int, catch_up_every: int
) -> None:
    """Projected incrementally, at any page size and between any batches: same answers."""
    view = open_view(ledger)
    view.ensure_live(load_policy())
    projector = Projector(ledger, view, page_size=page, cache_size=2)
    items = _stream(steps, uuid.uuid4().hex)
    for n, start in enumerate(range(0, len(items), batch)):
        ledger.record_batch(items[start : start + batch])
        if n % catch_up_every == 0:
            projector.catch_up()
    projector.catch_up()
    _assert_equal_to_replay(ledger, view)


def test_a_second_projector_and_a_restart_resume_without_double_applying(
    ledger: RelationshipLedger,
) -> None:
    with (DATA / "events.jsonl").open("rb") as handle:
        ingest_lines(ledger, handle)
    view = open_view(ledger)
    view.ensure_live(load_policy())
    first, second = Projector(ledger, view, page_size=100), Projector(ledger, view, page_size=70)
    head = ledger.head()
    first.catch_up(until=head // 2)
    # Another process moves the projection on; `first`'s cache is now stale.
    moved = second.catch_up(until=head - 100)
    assert moved.position == head - 100
    report = first.catch_up()
    assert (report.events, report.position) == (100, head)  # only what nobody applied yet
    _assert_equal_to_replay(ledger, view)


def test_runner_killed_mid_way_resumes_without_double_applying(
    store_url: str, tmp_path: Path
) -> None:
    """A real `relledger project` process, SIGKILLed between pages, then run again."""
    ledger = open_ledger(store_url)
    with _simulated(tmp_path / "sim.jsonl", 300, 60).open("rb") as handle:
        ingest_lines(ledger, handle)
    view = open_view(ledger)
    view.ensure_live(load_policy())
    tracking = view.generation(view.require_live().generation).tracking_name
    head = ledger.head()
    env = {**os.environ, "RELLEDGER_DB": store_url}
    process = subprocess.Popen(
        [sys.executable, "-m", "relledger", "project"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while (view.max_tracking_id(tracking) or 0) < 2000 and time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = view.max_tracking_id(tracking) or 0
    assert 0 < killed_at < head, "the kill must land mid-way for this test to mean anything"
    resumed = subprocess.run(
        [sys.executable, "-m", "relledger", "project"], env=env, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"read models at position {head} ({head - killed_at} events applied)" in (resumed.stdout)
    _assert_equal_to_replay(open_ledger(store_url), view)


def test_rebuild_reproduces_the_live_tables_and_finds_a_corrupted_row(
    ledger: RelationshipLedger, tmp_path: Path
) -> None:
    with _simulated(tmp_path / "sim.jsonl", 40, 30).open("rb") as handle:
        ingest_lines(ledger, handle)
    view = _project(ledger, page_size=333)
    clean = rebuild(ledger, view, check=True)
    assert clean.differences == [] and not clean.switched
    assert clean.relationships == 40

    victim = queries.list_relationships(view, limit=1, offset=7).items[0]["relationship_id"]
    live = view.generation(view.require_live().generation)
    summary, trust = live.table("summary"), live.table("trust")  # behind the views' back
    with view.transaction() as cursor:
        cursor.execute(
            view.dialect.sql(f"UPDATE {summary} SET trust = trust + 1 WHERE relationship_id = ?"),
            [victim],
        )
    checked = rebuild(ledger, view, check=True)
    assert [str(d) for d in checked.differences] == [
        f"{victim}: live rows differ from a fresh fold"
    ]
    assert not checked.switched

    # A deleted history row is found too; the real rebuild then repairs both.
    other = queries.list_relationships(view, limit=1, offset=11).items[0]["relationship_id"]
    with view.transaction() as cursor:
        cursor.execute(
            view.dialect.sql(f"DELETE FROM {trust} WHERE relationship_id = ? AND n = 0"), [other]
        )
    repaired = rebuild(ledger, view)
    assert {d.relationship_id for d in repaired.differences} == {victim, other}
    assert repaired.switched and repaired.new_generation == 4  # numbers 2, 3 went to checks
    _assert_equal_to_replay(ledger, view)
    assert rebuild(ledger, view, check=True).differences == []


def test_policy_change_and_rebuild_change_figures_and_recorded_version(
    ledger: RelationshipLedger, tmp_path: Path
) -> None:
    with (DATA / "events.jsonl").open("rb") as handle:
        ingest_lines(ledger, handle)
    view = _project(ledger)
    follower = Projector(ledger, view)  # running all along, its cache warm under v1
    follower.catch_up()
    before = {item["relationship_id"]: item for item in _all(view)}
    text = (Path(__file__).parents[1] / "domain" / "policies" / "v1.toml").read_text()
    stricter = text.replace('version = "v1"', 'version = "v1-strict"')
    assert stricter != text
    policy_file = tmp_path / "strict.toml"
    policy_file.write_text(stricter.replace("initial = 30.0", "initial = 20.0"))
    assert "initial = 20.0" in policy_file.read_text()
    report = rebuild(ledger, view, load_policy(policy_file))
    assert report.switched and (report.old_policy, report.new_policy) == ("v1", "v1-strict")
    after = {item["relationship_id"]: item for item in _all(view)}
    assert {item["policy"] for item in after.values()} == {"v1-strict"}
    for stable in ("trust_changes", "phase_changes"):  # every row names its policy
        versions = view.query(f"SELECT DISTINCT policy FROM {view.dialect.name(stable)}")
        assert [row["policy"] for row in versions] == ["v1-strict"]
    assert any(after[rid]["trust"] != before[rid]["trust"] for rid in before)
    assert len(report.differences) == len(before)  # every row carries the new version
    assert view.require_live().policy().version == "v1-strict"
    # The follower notices the switch and scores new events under the live policy.
    with _simulated(tmp_path / "more.jsonl", 5, 20).open("rb") as handle:
        assert ingest_lines(ledger, handle).recorded > 0
    assert follower.catch_up().resyncs == 0  # it re-reads the generation before each run
    _assert_equal_to_replay(ledger, view)
    assert queries.status(view, ledger).policy == "v1-strict"


def _all(view: RelationshipView) -> list[dict]:
    return queries.list_relationships(view, limit=10_000).items


def test_queries_filter_sort_page_and_explain(ledger: RelationshipLedger, tmp_path: Path) -> None:
    with _simulated(tmp_path / "sim.jsonl", 60, 40, seed=7).open("rb") as handle:
        ingest_lines(ledger, handle)
    view = _project(ledger)
    everything = _all(view)
    in_commitment = [i for i in everything if i["phase"] == "commitment"]
    assert in_commitment, "the simulated personas include committed relationships"
    listed = queries.list_relationships(view, queries.Filters(phase=Phase.COMMITMENT), limit=3)
    assert listed.total == len(in_commitment)
    assert [i["relationship_id"] for i in listed.items] == sorted(
        i["relationship_id"] for i in in_commitment
    )[:3]
    by_trust = queries.list_relationships(
        view, sort=queries.SortKey.TRUST, descending=True, limit=5, offset=5
    ).items
    ranked = sorted(everything, key=lambda i: (-i["trust"], i["relationship_id"]))
    assert [i["relationship_id"] for i in by_trust] == [i["relationship_id"] for i in ranked[5:10]]
    counts = queries.distribution(view)
    assert sum(counts["phase"].values()) == len(everything) == 60
    outliers = queries.fairness_outliers(view, limit=3)
    assert all(o["fairness"]["status"] != "balanced" for o in outliers)
    assert abs(outliers[0]["fairness"]["index"]) == max(
        abs(i["fairness"]["index"]) for i in everything
    )
    # At risk: the net fall over a period, with the events that caused it.
    drops = queries.trust_drops(
        view, datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC), limit=3
    )
    assert drops and drops[0]["net_change"] < 0
    worst = drops[0]
    history = queries.trust_history(view, worst["relationship_id"])
    assert worst["net_change"] == pytest.approx(sum(c["delta"] for c in history), abs=1e-3)
    assert {c["event_id"] for c in worst["causes"]} <= {c["event_id"] for c in history}
    assert all(c["delta"] < 0 for c in worst["causes"])


def test_a_follower_keeps_up_and_stops_cleanly_on_sigterm(store_url: str, tmp_path: Path) -> None:
    """`relledger project --follow`: new events show up in the read models, SIGTERM ends it."""
    ledger = open_ledger(store_url)
    view = _project(ledger)  # the read models exist; the follower starts at the head
    env = {**os.environ, "RELLEDGER_DB": store_url}
    follower = subprocess.Popen(
        [sys.executable, "-m", "relledger", "project", "--follow", "--interval", "0.1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with _simulated(tmp_path / "sim.jsonl", 20, 15).open("rb") as handle:
            ingest_lines(ledger, handle)  # recorded only; the follower must project them
        deadline = time.monotonic() + 60
        while queries.status(view, ledger).lag and time.monotonic() < deadline:
            assert follower.poll() is None, follower.stderr.read() if follower.stderr else ""
            time.sleep(0.1)
        assert queries.status(view, ledger).lag == 0
    finally:
        follower.send_signal(signal.SIGTERM)
        out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    assert "applied" in out
    _assert_equal_to_replay(ledger, view)


def test_a_page_whose_commit_fails_is_not_applied_twice(
    ledger: RelationshipLedger, tmp_path: Path
) -> None:
    """The projector's cache already holds a page when COMMIT fails: it must forget it."""
    with _simulated(tmp_path / "sim.jsonl", 10, 30).open("rb") as handle:
        ingest_lines(ledger, handle)
    view = open_view(ledger)
    view.ensure_live(load_policy())
    projector = Projector(ledger, view, page_size=50)
    original = view.transaction
    pages = iter(range(1000))

    @contextmanager
    def failing_third_commit() -> Iterator[Any]:
        with original() as cursor:
            yield cursor
            if next(pages) == 3:  # the page is written; now the commit "fails"
                raise OperationalError("connection lost at COMMIT")

    view.transaction = failing_third_commit  # type: ignore[method-assign]
    with pytest.raises(OperationalError):
        projector.catch_up()
    view.transaction = original  # type: ignore[method-assign]
    projector.catch_up()  # the same projector, as `project --follow` retries
    _assert_equal_to_replay(ledger, view)


def test_damaged_tracking_fails_loudly_instead_of_spinning(
    ledger: RelationshipLedger, store_url: str
) -> None:
    with (DATA / "events.jsonl").open("rb") as handle:
        ingest_lines(ledger, handle)
    view = _project(ledger, page_size=100)
    tracking = view.generation(view.require_live().generation).tracking_name
    with view.transaction() as cursor:  # someone sets the position back by hand
        cursor.execute(
            view.dialect.sql(
                f"UPDATE {view.tracking_table()} SET notification_id = 50 "
                "WHERE application_name = ?"
            ),
            [tracking],
        )
    with pytest.raises(IntegrityError):  # the history rows already exist: a damaged store
        Projector(ledger, view, page_size=100).catch_up()
    cli = CliRunner().invoke(app, ["--db", store_url, "project"])
    assert cli.exit_code == 3
    assert "tracking record says 50" in cli.stderr
    assert "run relledger projections rebuild --from-zero" in cli.stderr
    assert cli.exception is None or isinstance(cli.exception, SystemExit)  # no traceback
    repaired = CliRunner().invoke(app, ["--db", store_url, "projections", "rebuild", "--from-zero"])
    assert repaired.exit_code == 0, repaired.output
    _assert_equal_to_replay(ledger, view)


def test_a_rebuild_never_reuses_a_generation_and_a_raced_one_is_told(
    ledger: RelationshipLedger,
) -> None:
    with (DATA / "events.jsonl").open("rb") as handle:
        ingest_lines(ledger, handle)
    view = _project(ledger)
    policy = view.require_live().policy()
    running = view.allocate()  # another rebuild, still building generation 2
    report = rebuild(ledger, view)
    assert report.new_generation == running.number + 1 and report.switched
    with pytest.raises((OperationalError, ProgrammingError)):  # its tables were dropped
        Projector(ledger, view, target=(running, policy)).catch_up()
    _assert_equal_to_replay(ledger, view)


def test_a_policy_with_the_live_version_but_other_rules_is_refused(
    ledger: RelationshipLedger, tmp_path: Path
) -> None:
    with (DATA / "events.jsonl").open("rb") as handle:
        ingest_lines(ledger, handle)
    view = _project(ledger)
    text = (Path(__file__).parents[1] / "domain" / "policies" / "v1.toml").read_text()
    same_name = tmp_path / "v1-changed.toml"
    same_name.write_text(text.replace("initial = 30.0", "initial = 20.0"))
    with pytest.raises(PolicyError, match="give the new rules a new version"):
        rebuild(ledger, view, load_policy(same_name))
    assert view.require_live().generation == 1
