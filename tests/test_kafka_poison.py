"""Poison messages never stop a partition: each one ends in the dead-letter topic with
its code and reason, and every good message around it is recorded exactly as ingesting
the same lines from a file records them.

Poison here is whatever a producer can send: a number no JSON reader agrees on, a
message near 1 MB (too large to forward with our headers, so it goes as a summary),
a reused `(source, event_id)` with other content, bytes that are not JSON, a NUL in
an identifier; and errors nobody foresaw while validating or deciding one message.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
from broker import create_topic, kafka_bootstrap_fixture, read_topic  # noqa: F401
from kafka import KafkaProducer
from kafka.errors import MessageSizeTooLargeError
from kafka_support import (
    Worker,
    consumer_config,
    expected_from_file,
    prepare_store,
    simulated_lines,
    snapshot,
    stored_snapshot,
    wait_for_positions,
    worker_args,
    workers_fixture,  # noqa: F401
)

from consumers import kafka_batch
from consumers.kafka_consumer import LedgerConsumer
from consumers.kafka_deadletter import (
    ERROR,
    FORM,
    ORIGIN_OFFSET,
    ORIGIN_PARTITION,
    REASON,
    DeadLetter,
    DeadLetterWriter,
)
from consumers.publish import publish_lines
from domain.relationship import Relationship
from service.store import open_ledger

NEAR_1MB = 1_048_400
"""Under the producer's 1 MiB request limit, over it once dead-letter headers are added."""


def variant(line: bytes, **changes: Any) -> bytes:
    event = json.loads(line)
    event.update(changes)
    return json.dumps(event).encode()


def near_1mb(line: bytes) -> bytes:
    event = json.loads(variant(line, event_id="poison-big"))
    event["attributes"] = {"blob": ""}
    padding = NEAR_1MB - len(json.dumps(event).encode())
    event["attributes"] = {"blob": "x" * padding}
    encoded = json.dumps(event).encode()
    assert len(encoded) == NEAR_1MB
    return encoded


def ends_of(bootstrap: str, topic: str) -> dict[int, int]:
    ends: dict[int, int] = {}
    for record in read_topic(bootstrap, topic):
        ends[record.partition] = record.offset + 1
    return ends


def by_origin(records: list[Any]) -> dict[tuple[int, int], Any]:
    """Dead letters by origin (they are at-least-once: a repeat has the same origin)."""
    return {
        (int(dict(r.headers)[ORIGIN_PARTITION]), int(dict(r.headers)[ORIGIN_OFFSET])): r
        for r in records
    }


def test_poison_is_dead_lettered_and_the_good_messages_recorded(
    kafka_bootstrap: str, tmp_path: Path, workers: list[Worker]
) -> None:
    good = simulated_lines(8, 20, seed=53)
    with_amount = next(line for line in good if b'"amount"' in line)
    amount = json.loads(with_amount)["amount"]
    relationship = json.loads(good[0])["relationship_id"]
    not_json = b'{"relationship_id": "' + relationship.encode() + b'", "kind": '
    poison = [
        variant(good[0], event_id="poison-int", attributes={"n": 2**64}),
        near_1mb(good[1]),
        variant(with_amount, amount=f"{amount}1"),  # same source and event_id: a conflict
        variant(good[2], event_id="poison-nul", relationship_id="crm/a\u0000b"),
    ]
    expected, rejected = expected_from_file([*good, *poison, not_json], tmp_path)
    assert sorted(code for code, _ in rejected.values()) == [
        "conflict",
        *["contract"] * 4,
    ]
    topic = create_topic(kafka_bootstrap, 4)
    dead_letter_topic = create_topic(kafka_bootstrap, 1, name=f"{topic}.dlq")
    report = publish_lines(kafka_bootstrap, topic, [*good[:60], *poison, *good[60:]])
    assert not report.unsent
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    producer.send(topic, key=relationship.encode(), value=not_json)
    producer.flush()
    producer.close()
    ends = ends_of(kafka_bootstrap, topic)

    store_url = f"sqlite:///{tmp_path}/ledger.db"
    prepare_store(store_url)
    member = Worker(tmp_path, "member", *worker_args(kafka_bootstrap, topic, "g", store_url))
    workers.append(member)
    wait_for_positions(store_url, topic, ends)
    stats = member.stop()

    assert stored_snapshot(store_url) == expected
    assert stats["dead_lettered"] == len(rejected)
    assert stats["conflicts"] == 1
    originals = {(r.partition, r.offset): r.value for r in read_topic(kafka_bootstrap, topic)}
    dead = by_origin(read_topic(kafka_bootstrap, dead_letter_topic))
    assert {originals[origin] for origin in dead} == set(rejected)
    for origin, letter in dead.items():
        headers = dict(letter.headers)
        code, reason = rejected[originals[origin]]
        assert (headers[ERROR].decode(), headers[REASON].decode()) == (code, reason)
        if len(originals[origin]) < NEAR_1MB:
            assert FORM not in headers
            assert letter.value == originals[origin]
            continue
        assert headers[FORM] == b"summary"
        summary = json.loads(letter.value)
        original = originals[origin]
        assert summary["origin"] == {"topic": topic, "partition": origin[0], "offset": origin[1]}
        assert (summary["code"], summary["reason"]) == (code, reason)
        assert summary["size"] == len(original)
        assert summary["sha256"] == hashlib.sha256(original).hexdigest()
        assert summary["head"] == original[:1024].decode()


def test_unforeseen_errors_validating_or_deciding_dead_letter_one_message(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error that no rule anticipated, raised while one message is validated or while
    the ledger decides it (inside the batch's transaction), dead-letters that message as
    `internal`; the rest of its batch is recorded as the file path records it."""
    good = simulated_lines(6, 15, seed=59)
    expected, _ = expected_from_file(good, tmp_path)
    in_validation = variant(good[3], event_id="boom-validate")
    in_decision = variant(good[4], event_id="boom-decide")
    parse = kafka_batch.parse_interaction
    record = Relationship.record

    def parse_or_fail(raw: Any, **options: Any) -> Any:
        if b"boom-validate" in raw:
            raise RuntimeError("validation blew up")
        return parse(raw, **options)

    def record_or_fail(self: Relationship, item: Any, *canonical: Any) -> Any:
        if item.event_id == "boom-decide":
            raise OverflowError("decision blew up")
        return record(self, item, *canonical)

    monkeypatch.setattr(kafka_batch, "parse_interaction", parse_or_fail)
    monkeypatch.setattr(Relationship, "record", record_or_fail)
    topic = create_topic(kafka_bootstrap, 2)
    dead_letter_topic = create_topic(kafka_bootstrap, 1, name=f"{topic}.dlq")
    ends = publish_lines(
        kafka_bootstrap, topic, [*good[:40], in_validation, in_decision, *good[40:]]
    ).partitions
    ledger = open_ledger(f"sqlite:///{tmp_path}/ledger.db", create=True)
    consumer = LedgerConsumer(ledger, consumer_config(kafka_bootstrap, topic))
    try:
        deadline = time.monotonic() + 30
        while consumer.positions() != ends and time.monotonic() < deadline:
            consumer.poll_once()
        assert consumer.positions() == ends
    finally:
        consumer.close()
    try:
        assert snapshot(ledger) == expected
    finally:
        ledger.close()
    dead = read_topic(kafka_bootstrap, dead_letter_topic)
    assert sorted((dict(r.headers)[ERROR], dict(r.headers)[REASON]) for r in dead) == [
        (b"internal", b"internal: OverflowError: decision blew up"),
        (b"internal", b"internal: RuntimeError: validation blew up"),
    ]
    assert sorted(r.value for r in dead) == sorted([in_validation, in_decision])
    assert consumer.stats.dead_lettered == 2


class RefusingFuture:
    def get(self, timeout: float) -> None:
        raise MessageSizeTooLargeError("the broker refused it")


class AcceptedFuture:
    def get(self, timeout: float) -> None:
        return None


class BrokerThatRefusesLargeRecords:
    """A producer whose broker refuses records over 4 KiB (Tansu accepts any size)."""

    config: ClassVar[dict[str, int]] = {"max_request_size": 1024 * 1024}

    def __init__(self) -> None:
        self.sent: list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]] = []

    def send(self, topic: str, *, key: bytes | None, value: bytes, headers: Any) -> Any:
        if len(value) > 4096:
            return RefusingFuture()
        self.sent.append((key, value, headers))
        return AcceptedFuture()

    def flush(self, timeout: float) -> None:
        pass


def test_a_dead_letter_the_broker_refuses_as_too_large_goes_as_its_summary() -> None:
    producer = BrokerThatRefusesLargeRecords()
    letter = DeadLetter("t", 0, 7, b"k", b"\xff" + b"y" * 5000, (), "contract", "json: bad")
    DeadLetterWriter(producer, "t.dlq").send_all([letter])
    [(key, value, headers)] = producer.sent
    assert key == b"k"
    assert dict(headers)[FORM] == b"summary"
    summary = json.loads(value)
    assert summary["size"] == 5001
    assert summary["head"] == "\\xff" + "y" * 1023
