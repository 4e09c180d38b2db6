"""Kafka ingestion against a real broker (Tansu) and real stores (SQLite, PostgreSQL).

What must hold, whatever happens to the consumers: every good message ends recorded
exactly once (redeliveries counted as duplicates, never stored twice), in the order
its relationship's partition delivered it, so the stored chains equal those of
ingesting the same lines from a file; every bad message ends unchanged in the
dead-letter topic with its reason and origin. The expectations come from
`consumers.jsonl`, the already-tested file path, never from the Kafka code under test.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from broker import create_topic, kafka_bootstrap_fixture, read_topic  # noqa: F401
from conformance import DATA
from eventsourcing.persistence import Tracking
from kafka import KafkaProducer
from kafka_support import (
    LIMITS,
    PARTITIONS,
    Worker,
    assert_recorded_once,
    consumer_config,
    expected_from_file,
    prepare_store,
    publish,
    simulated_lines,
    slow_worker_args,
    snapshot,
    stored_positions,
    stored_snapshot,
    wait_for_positions,
    wait_until,
    worker_args,
    workers_fixture,  # noqa: F401
)

from consumers.kafka_consumer import LedgerConsumer
from consumers.kafka_deadletter import (
    ERROR,
    ORIGIN_OFFSET,
    ORIGIN_PARTITION,
    ORIGIN_TOPIC,
    REASON,
)
from consumers.kafka_positions import tracking_name
from consumers.publish import publish_lines
from domain.contract import parse_interaction
from domain.ledger import Outcome, PositionAlreadyRecorded, RelationshipLedger
from service.store import open_ledger

NO_PARTIES_FIRST = (
    b'{"event_id": "np-1", "source": "crm", "relationship_id": "new/no-parties", '
    b'"occurred_at": "2025-02-01T10:00:00Z", "kind": "contact", "actor": "customer"}'
)
NOT_JSON = b"{not json"
NO_KEY = (
    b'{"event_id": "bad-10", "source": "crm", "occurred_at": "2025-06-01T10:00:00Z", '
    b'"kind": "purchase", "actor": "customer", "amount": "10.00", "currency": "EUR", '
    b'"outcome": "met"}'
)


# -- 1. duplicates, late events and bad messages ---------------------------------------


def test_stream_with_duplicates_late_and_bad_messages(
    kafka_bootstrap: str, store_url: str, tmp_path: Path
) -> None:
    events = (DATA / "events.jsonl").read_bytes().splitlines()
    invalid = [line for line in (DATA / "invalid.jsonl").read_bytes().splitlines() if line]
    keyed_invalid = [line for line in invalid if line not in (NOT_JSON, NO_KEY)]
    # Bad messages in the middle of the stream and at its end (the contradictions need
    # their relationship recorded first).
    lines = [*events[:700], NO_PARTIES_FIRST, *events[700:], *keyed_invalid]
    expected, rejected = expected_from_file([*lines, NOT_JSON, NO_KEY], tmp_path)
    assert len(rejected) == len(invalid) + 1  # the file path rejects each bad line
    topic = create_topic(kafka_bootstrap, PARTITIONS)
    dead_letter_topic = create_topic(kafka_bootstrap, 1, name=f"{topic}.dlq")

    report = publish_lines(kafka_bootstrap, topic, [*lines, b"", NOT_JSON, NO_KEY])
    assert [(u.line, u.reason.split(":")[0]) for u in report.unsent] == [
        (len(lines) + 2, "json"),
        (len(lines) + 3, "relationship_id"),
    ]
    assert report.sent == len(lines)
    # Unkeyable messages still arrive from other producers; they carry headers of their own.
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    producer.send(topic, key=b"junk", value=NOT_JSON, headers=[("trace", b"t-1")])
    producer.send(topic, key=None, value=NO_KEY)
    producer.flush()
    producer.close()

    total = len(lines) + 2
    ledger = open_ledger(store_url)
    consumer = LedgerConsumer(ledger, consumer_config(kafka_bootstrap, topic))
    try:
        deadline = time.monotonic() + 30
        while consumer.stats.consumed < total and time.monotonic() < deadline:
            consumer.poll_once()
    finally:
        consumer.close()
    try:
        assert snapshot(ledger) == expected
        stats = consumer.stats
        assert stats.consumed == total
        assert stats.dead_lettered == len(rejected)
        recorded = sum(len(chain) for chain in expected.values())
        assert stats.recorded == recorded
        assert stats.duplicates == len(lines) - len(keyed_invalid) - 1 - recorded
        assert stats.late == sum(late for chain in expected.values() for *_, late, _ in chain)
        assert stats.duplicates > 0
        assert stats.late > 0
    finally:
        ledger.close()

    # Each bad message exactly once in the dead-letter topic: same key, value and
    # headers as the original its origin headers point at, plus the reason the file
    # path gives for the same line.
    dead = read_topic(kafka_bootstrap, dead_letter_topic)
    originals = {(r.partition, r.offset): r for r in read_topic(kafka_bootstrap, topic)}
    assert len(originals) == total
    assert sorted(record.value for record in dead) == sorted(rejected)
    for record in dead:
        headers = dict(record.headers)
        assert (headers[ERROR].decode(), headers[REASON].decode()) == rejected[record.value]
        assert headers[ORIGIN_TOPIC].decode() == topic
        original = originals[int(headers[ORIGIN_PARTITION]), int(headers[ORIGIN_OFFSET])]
        assert (original.key, original.value) == (record.key, record.value)
        assert [h for h in record.headers if not h[0].startswith("relledger-")] == list(
            original.headers
        )
    trace = next(record for record in dead if record.value == NOT_JSON)
    assert trace.key == b"junk"
    assert ("trace", b"t-1") in trace.headers


# -- 2. SIGKILL mid-stream, restart ---------------------------------------------------


def test_killed_consumer_restarts_without_loss_or_doubles(
    kafka_bootstrap: str, store_url: str, tmp_path: Path, workers: list[Worker]
) -> None:
    lines = simulated_lines(40, 60, seed=11)
    expected, _rejected = expected_from_file(lines, tmp_path)
    topic = create_topic(kafka_bootstrap, PARTITIONS)
    ends = publish(kafka_bootstrap, topic, lines)
    prepare_store(store_url)
    args = worker_args(kafka_bootstrap, topic, f"g-{topic}", store_url, "--max-records", "40")

    first = Worker(tmp_path, "first", *args)
    workers.append(first)
    ledger = open_ledger(store_url)
    try:
        total = sum(ends.values())
        wait_until(
            lambda: sum(stored_positions(ledger, topic).values()) >= total // 4,
            "the first worker to store a quarter of the stream",
        )
        first.kill()
        at_kill = sum(stored_positions(ledger, topic).values())
        assert at_kill < total, "the worker finished before it could be killed"
    finally:
        ledger.close()

    second = Worker(tmp_path, "second", *args)
    workers.append(second)
    wait_for_positions(store_url, topic, ends, timeout_s=40)
    stats = second.stop()

    assert stored_snapshot(store_url) == expected
    # The restart resumed exactly at the stored offsets: the batches the killed worker
    # had in hand are read again, nothing it had stored is.
    assert stats["consumed"] == total - at_kill


# -- 3. two members split the partitions ---------------------------------------------


def test_two_members_split_partitions_and_record_each_event_once(
    kafka_bootstrap: str, store_url: str, tmp_path: Path, workers: list[Worker]
) -> None:
    lines = simulated_lines(30, 40, seed=23)
    expected, _ = expected_from_file(lines, tmp_path)
    topic = create_topic(kafka_bootstrap, PARTITIONS)
    prepare_store(store_url)
    args = worker_args(kafka_bootstrap, topic, f"g-{topic}", store_url, "--max-records", "50")
    first, second = Worker(tmp_path, "a", *args), Worker(tmp_path, "b", *args)
    workers.extend([first, second])

    def split() -> bool:
        a, b = first.assignment(), second.assignment()
        return bool(a and b and not a & b and a | b == set(range(PARTITIONS)))

    wait_until(split, "both members to own a share of the partitions", timeout_s=90)
    ends = publish(kafka_bootstrap, topic, lines)
    wait_for_positions(store_url, topic, ends)
    stats = [first.stop(), second.stop()]

    assert all(s["consumed"] > 0 for s in stats), stats
    assert sum(s["consumed"] for s in stats) == len(lines)
    assert_recorded_once(store_url, expected, lines, stats)


# -- 4. a member joins mid-stream ---------------------------------------------------


@pytest.mark.parametrize(
    "empty_store_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_rebalance_mid_stream_loses_nothing(
    kafka_bootstrap: str, store_url: str, tmp_path: Path, workers: list[Worker]
) -> None:
    lines = simulated_lines(30, 50, seed=31)
    expected, _ = expected_from_file(lines, tmp_path)
    topic = create_topic(kafka_bootstrap, PARTITIONS)
    ends = publish(kafka_bootstrap, topic, lines)
    total = sum(ends.values())
    prepare_store(store_url)
    group = f"g-{topic}"
    # A slow first member (small batches, a pause after each poll), so the stream is
    # still flowing when the second one joins and takes partitions over.
    first = Worker(tmp_path, "a", *slow_worker_args(kafka_bootstrap, topic, group, store_url))
    workers.append(first)
    ledger = open_ledger(store_url)
    try:
        wait_until(
            lambda: sum(stored_positions(ledger, topic).values()) > total // 10,
            "the first member to be consuming",
        )
        second = Worker(tmp_path, "b", *worker_args(kafka_bootstrap, topic, group, store_url))
        workers.append(second)
        wait_until(lambda: bool(second.assignment()), "the second member's assignment")
        at_handover = sum(stored_positions(ledger, topic).values())
        assert at_handover < total, "the stream ended before the rebalance"
    finally:
        ledger.close()
    wait_for_positions(store_url, topic, ends)
    stats = [first.stop(), second.stop()]

    assert stats[1]["consumed"] > 0
    assert stats[0]["rebalances"] >= 2
    assert_recorded_once(store_url, expected, lines, stats)


# -- the transaction order the guarantees rest on (no broker needed) ------------------


def test_dead_letter_hook_runs_before_the_commit_and_can_veto_it(
    ledger: RelationshipLedger,
) -> None:
    lines = (DATA / "events.jsonl").read_bytes().splitlines()[:50]
    items = [parse_interaction(line, limits=LIMITS) for line in lines]
    name = tracking_name("t", 0)

    class Unavailable(Exception):
        pass

    def refuse(outcomes: Sequence[Outcome]) -> None:
        assert len(outcomes) == len(items)
        assert ledger.positions.max_tracking_id(name) is None  # nothing committed yet
        raise Unavailable

    with pytest.raises(Unavailable):
        ledger.record_batch(items, Tracking(name, 50), before_commit=refuse)
    assert ledger.positions.max_tracking_id(name) is None
    assert not list(ledger.scan())

    seen: list[int] = []
    ledger.record_batch(items, Tracking(name, 50), before_commit=lambda o: seen.append(len(o)))
    assert seen == [50]
    assert ledger.positions.max_tracking_id(name) == 50
    stored = len(list(ledger.scan()))

    # Another member stored this partition further: our (older) batch is refused whole.
    with pytest.raises(PositionAlreadyRecorded) as taken:
        ledger.record_batch(items, Tracking(name, 40), before_commit=lambda o: None)
    assert taken.value.stored == 50
    assert len(list(ledger.scan())) == stored
