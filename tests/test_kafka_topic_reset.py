"""A topic deleted and recreated empty while the store keeps its offsets.

The store holds each partition's next offset; a recreated topic starts again at 0. Left
alone, a consumer would skip the new records below the stored offset (Tansu answers
empty fetches there) or refuse them for ever as already stored (Apache Kafka resets the
fetch to the beginning). These tests delete and recreate a topic on the real broker the
Kafka tests run (Tansu can delete topics), and check what an operator sees: the new
records are recorded, and one `partition_reset` line names the topic, the partition,
the stored offset and the broker's range.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from broker import create_topic, kafka_bootstrap_fixture  # noqa: F401
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError
from kafka_support import (
    Worker,
    consumer_config,
    publish,
    snapshot,
    wait_until,
    worker_args,
    workers_fixture,  # noqa: F401
)

from consumers.kafka_consumer import LedgerConsumer
from consumers.kafka_positions import epoch_name, tracking_name
from domain.ledger import RelationshipLedger
from service.store import open_ledger


def _line(event_id: str, relationship: str, day: int) -> bytes:
    return json.dumps(
        {
            "event_id": event_id,
            "source": "billing",
            "relationship_id": relationship,
            "occurred_at": f"2025-03-{day:02d}T10:00:00Z",
            "kind": "purchase",
            "actor": "customer",
            "amount": "10.00",
            "currency": "EUR",
            "outcome": "met",
            "parties": {"supplier": relationship.split("/")[0], "customer": "c"},
        }
    ).encode()


def _recreate(bootstrap: str, topic: str, partitions: int) -> None:
    """Delete `topic` and create it again, empty, once the broker has let it go."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.delete_topics([topic])
        deadline = time.monotonic() + 20
        while True:
            try:
                admin.create_topics([NewTopic(topic, partitions, 1)])
                return
            except KafkaError:  # still being deleted
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        admin.close()


def _event_ids(ledger: RelationshipLedger) -> set[str]:
    return {stored.record["event_id"] for stored in ledger.scan()}  # type: ignore[union-attr]


def _poll_until(consumer: LedgerConsumer, done: Any, what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        consumer.poll_once()


def _reset_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "partition_reset" in line]


def test_a_topic_recreated_while_consuming_is_recorded_from_its_beginning(
    kafka_bootstrap: str, store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    topic = create_topic(kafka_bootstrap, 1)
    old = [_line(f"old-{n}", "acme/old", 1 + n) for n in range(8)]
    new = [_line(f"new-{n}", "acme/new", 1 + n) for n in range(3)]
    ledger = open_ledger(store_url)
    consumer = LedgerConsumer(ledger, consumer_config(kafka_bootstrap, topic))
    try:
        publish(kafka_bootstrap, topic, old)
        _poll_until(consumer, lambda: len(_event_ids(ledger)) == 8, "the old records")
        assert ledger.positions.max_tracking_id(tracking_name(topic, 0)) == 8

        _recreate(kafka_bootstrap, topic, 1)
        publish(kafka_bootstrap, topic, new)
        with caplog.at_level(logging.INFO, logger="relledger.kafka"):
            _poll_until(
                consumer,
                lambda: {"new-0", "new-1", "new-2"} <= _event_ids(ledger),
                "the new topic's records (not skipped below the stored offset 8)",
            )
    finally:
        consumer.close()
    try:
        assert _event_ids(ledger) == {f"old-{n}" for n in range(8)} | {"new-0", "new-1", "new-2"}
        assert len(snapshot(ledger)["acme/new"]) == 3
        # The new topic's positions are the new epoch's; the old row is left as it was.
        assert ledger.positions.max_tracking_id(epoch_name(topic, 0)) == 1
        assert ledger.positions.max_tracking_id(tracking_name(topic, 0, 1)) == 3
        assert ledger.positions.max_tracking_id(tracking_name(topic, 0)) == 8
    finally:
        ledger.close()
    lines = [r for r in caplog.records if "partition_reset" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].levelno == logging.ERROR
    message = lines[0].getMessage()
    assert f"topic={topic} partition=0 stored_offset=8 broker_beginning=0" in message
    assert "broker_end=" in message and "broker_end=-" not in message
    assert "recreated" in message


def test_a_restarted_consumer_finds_the_topic_recreated_and_says_so(
    kafka_bootstrap: str, store_url: str, tmp_path: Path, workers: list[Worker]
) -> None:
    """`relledger consume` itself, started after the topic was recreated: its JSON log
    has the line, its counters the new records, and a second start changes nothing."""
    topic = create_topic(kafka_bootstrap, 2)
    old = [_line(f"old-{n}", f"s{n % 10}/old", 1 + n % 28) for n in range(40)]
    ledger = open_ledger(store_url)
    try:
        first = LedgerConsumer(ledger, consumer_config(kafka_bootstrap, topic))
        try:
            publish(kafka_bootstrap, topic, old)
            _poll_until(first, lambda: len(_event_ids(ledger)) == 40, "the old records")
        finally:
            first.close()
        stored = {p: ledger.positions.max_tracking_id(tracking_name(topic, p)) or 0 for p in (0, 1)}
    finally:
        ledger.close()
    assert all(offset > 2 for offset in stored.values()), stored

    _recreate(kafka_bootstrap, topic, 2)
    new = [_line(f"new-{n}", f"s{n % 4}/new", 1 + n) for n in range(4)]
    published = publish(kafka_bootstrap, topic, new)
    ends = {p: published.get(p, 0) for p in (0, 1)}
    assert all(ends[p] < stored[p] for p in ends)  # the new topic is below the stored offsets

    worker = Worker(
        tmp_path, "after", *worker_args(kafka_bootstrap, topic, "g-after", store_url, "--json-logs")
    )
    workers.append(worker)
    wait_until(lambda: len(_reset_lines(worker.text())) == 2, "a reset line per partition")
    wait_until(lambda: _stats_now(worker).get("recorded") == "4", "the new records")
    stats = worker.stop()
    assert stats["recorded"] == 4 and stats["dropped"] == 0
    assert stats["resets"] == 2  # the stats line counts what the log lines said

    entries = [json.loads(line) for line in _reset_lines(worker.text())]
    assert {entry["level"] for entry in entries} == {"error"}
    for partition, end in ends.items():
        expected = (
            f"topic={topic} partition={partition} stored_offset={stored[partition]} "
            f"broker_beginning=0 broker_end={end}"
        )
        assert any(expected in entry["message"] for entry in entries), (expected, entries)

    again = Worker(tmp_path, "again", *worker_args(kafka_bootstrap, topic, "g-again", store_url))
    workers.append(again)
    wait_until(lambda: "resuming partition" in again.text(), "the second start")
    time.sleep(2)
    assert again.stop()["recorded"] == 0
    assert _reset_lines(again.text()) == []  # the new epoch is the store's now


def _stats_now(worker: Worker) -> dict[str, str]:
    """The latest `stats` line of a worker's log, as a dict of its counters."""
    lines = [line for line in worker.text().splitlines() if "stats consumed=" in line]
    if not lines:
        return {}
    message = json.loads(lines[-1])["message"] if lines[-1].startswith("{") else lines[-1]
    pairs = message.split("stats ", 1)[1].split()
    return {key: value for key, _, value in (pair.partition("=") for pair in pairs)}
