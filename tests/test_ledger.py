"""The recording path on both backends: conformance, idempotency, late events, contradictions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conformance import DATA, EXPECTED, ingest_command, ingest_file
from eventsourcing.persistence import Tracking

from consumers.jsonl import LineRejection
from domain.contract import parse_interaction
from domain.errors import ContradictsRelationship
from domain.ledger import PositionAlreadyRecorded, RelationshipLedger, UnknownRelationship
from domain.relationship import Recorded
from projections.replay import replay_relationship
from projections.views import standing_view
from service.policies import load_policy
from service.store import open_ledger


def _ingest(ledger: RelationshipLedger, name: str, batch_size: int = 500):
    return ingest_file(ledger, name, batch_size=batch_size)


def test_conformance_stories_recorded_and_replayed(ledger: RelationshipLedger) -> None:
    report = _ingest(ledger, "events.jsonl", batch_size=97)
    refused: list[LineRejection] = []
    bad = ingest_file(ledger, "invalid.jsonl", on_rejection=refused.append)
    assert report.rejected == 0
    assert report.recorded == sum(story["events"] for story in EXPECTED.values())
    assert report.duplicates > 0 and report.late > 0
    assert bad.recorded == 0
    assert [(r.line, r.error.field) for r in refused] == [
        (1, "occurred_at"),
        (2, "kind"),
        (3, "amount"),
        (4, "json"),
        (5, "amount"),
        (6, "colour"),
        (8, "currency"),
        (9, "actor"),
        (10, "parties"),
        (11, "outcome"),
        (12, "relationship_id"),
    ]
    policy = load_policy()
    for relationship_id, expected in EXPECTED.items():
        found = replay_relationship(ledger, relationship_id, policy)
        view = standing_view(relationship_id, found.standing)
        assert view["phase"] == expected["phase"], relationship_id
        assert view["stage"] == expected["stage"], relationship_id
        assert view["connection"] == expected["connection"], relationship_id
        assert view["trust"] == pytest.approx(expected["trust"], abs=1e-3), relationship_id
        assert view["cycle"] == expected["cycle"], relationship_id
        assert view["events"] == expected["events"], relationship_id
        assert view["fairness"] == expected["fairness"], relationship_id
        assert len(found.scorer.trust_changes) == expected["trust_changes"], relationship_id
        path = [change.to_phase.value for change in found.scorer.phase_changes]
        assert path == expected["phase_path"], relationship_id


def _line(**fields: object) -> str:
    base = {
        "event_id": "e1",
        "source": "crm",
        "relationship_id": "acme/bistro",
        "occurred_at": "2025-03-01T10:00:00Z",
        "kind": "contact",
        "actor": "customer",
        "parties": {"supplier": "acme", "customer": "bistro"},
    }
    base.update(fields)
    return json.dumps({key: value for key, value in base.items() if value is not None})


def test_redelivery_is_a_counted_no_op_after_a_restart(store_url: str) -> None:
    first = open_ledger(store_url)
    items = [
        parse_interaction(_line()),
        parse_interaction(
            _line(
                event_id="e2",
                kind="purchase",
                amount="120.00",
                currency="EUR",
                outcome="met",
                parties=None,
            )
        ),
    ]
    assert first.record_batch(items) == [Recorded.RECORDED, Recorded.RECORDED]
    first.close()
    again = open_ledger(store_url)  # a new application: nothing cached
    assert again.record_batch(items) == [Recorded.DUPLICATE, Recorded.DUPLICATE]
    assert len(again.history("acme/bistro")) == 2


def test_idempotent_across_processes(store_url: str, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes((DATA / "events.jsonl").read_bytes())
    command = ingest_command(store_url, str(events))
    first = subprocess.run(command, capture_output=True, text=True, check=True)
    second = subprocess.run(command, capture_output=True, text=True, check=True)
    recorded = sum(story["events"] for story in EXPECTED.values())
    assert f"recorded {recorded} " in first.stdout
    lines = sum(1 for line in events.read_text().splitlines() if line.strip())
    assert second.stdout.startswith(
        f"recorded 0 (late 0), duplicates {lines}, conflicts 0, rejected 0;"
    )


def test_late_event_is_recorded_and_flagged(ledger: RelationshipLedger) -> None:
    items = [
        parse_interaction(_line()),
        parse_interaction(
            _line(
                event_id="e2",
                occurred_at="2025-04-01T10:00:00Z",
                kind="communication",
                parties=None,
            )
        ),
        parse_interaction(
            _line(
                event_id="e3",
                occurred_at="2025-03-15T10:00:00Z",
                kind="communication",
                parties=None,
            )
        ),
    ]
    assert ledger.record_batch(items) == [Recorded.RECORDED, Recorded.RECORDED, Recorded.LATE]
    assert [stored.late for stored in ledger.history("acme/bistro")] == [False, False, True]


def test_contradictions_are_rejected_and_change_nothing(ledger: RelationshipLedger) -> None:
    ledger.record_batch(
        [
            parse_interaction(_line()),
            parse_interaction(
                _line(
                    event_id="e2",
                    kind="purchase",
                    amount="10.00",
                    currency="EUR",
                    outcome="met",
                    parties=None,
                )
            ),
        ]
    )
    outcomes = ledger.record_batch(
        [
            parse_interaction(
                _line(
                    event_id="e3",
                    kind="purchase",
                    amount="10.00",
                    currency="USD",
                    outcome="met",
                    parties=None,
                )
            ),
            parse_interaction(_line(event_id="e4", parties={"supplier": "other", "customer": "x"})),
            parse_interaction(_line(event_id="e5", kind="communication", parties=None)),
        ]
    )
    assert isinstance(outcomes[0], ContradictsRelationship) and outcomes[0].field == "currency"
    assert isinstance(outcomes[1], ContradictsRelationship) and outcomes[1].field == "parties"
    assert outcomes[2] is Recorded.RECORDED
    assert [s.record["event_id"] for s in ledger.history("acme/bistro")] == ["e1", "e2", "e5"]


def test_first_event_without_parties_is_rejected(ledger: RelationshipLedger) -> None:
    [outcome] = ledger.record_batch([parse_interaction(_line(parties=None))])
    assert outcome.field == "parties"  # type: ignore[union-attr]
    with pytest.raises(UnknownRelationship):
        ledger.history("acme/bistro")


def test_two_writers_on_one_store_never_lose_or_double(store_url: str) -> None:
    """A stale cached aggregate fails the version check, is reloaded and the batch retried."""
    one, two = open_ledger(store_url), open_ledger(store_url)
    one.record_batch([parse_interaction(_line())])
    two.record_batch([parse_interaction(_line(event_id="e2", kind="communication", parties=None))])
    # `one` still caches version 1; its next save conflicts and must be retried.
    outcomes = one.record_batch(
        [
            parse_interaction(_line(event_id="e3", kind="communication", parties=None)),
            parse_interaction(_line(event_id="e2", kind="communication", parties=None)),
        ]
    )
    assert outcomes == [Recorded.RECORDED, Recorded.DUPLICATE]
    assert [s.record["event_id"] for s in open_ledger(store_url).history("acme/bistro")] == [
        "e1",
        "e2",
        "e3",
    ]


def test_a_consumer_position_commits_with_its_events(store_url: str) -> None:
    """Exactly-once for upstream consumers: events and position land together or not at all."""
    ledger = open_ledger(store_url)
    ledger.record_batch([parse_interaction(_line())], tracking=Tracking("kafka:t:0", 10))
    assert open_ledger(store_url).positions.max_tracking_id("kafka:t:0") == 10
    # A batch replayed from an older position is refused whole: nothing half-applied.
    with pytest.raises(PositionAlreadyRecorded, match="already at position 10"):
        ledger.record_batch(
            [parse_interaction(_line(event_id="e2", kind="communication", parties=None))],
            tracking=Tracking("kafka:t:0", 10),
        )
    assert [s.record["event_id"] for s in open_ledger(store_url).history("acme/bistro")] == ["e1"]


def test_processes_starting_together_on_a_new_store_all_work(empty_store_url: str) -> None:
    """Replicas of a deployment start at once, each migrating first: their table creation
    races, none of them may fail; then they all ingest the same stories."""

    def together(command: list[str]) -> list[tuple[str, str]]:
        processes = [
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(4)
        ]
        results = [process.communicate(timeout=120) for process in processes]
        for process, (_, err) in zip(processes, results, strict=True):
            assert process.returncode == 0, err
        return results

    migrating = [sys.executable, "-m", "relledger", "--db", empty_store_url, "migrate"]
    together(migrating)
    results = together(ingest_command(empty_store_url, str(DATA / "events.jsonl")))
    recorded = sum(int(out.split()[1]) for out, _ in results)
    assert recorded == sum(story["events"] for story in EXPECTED.values())  # once in all
