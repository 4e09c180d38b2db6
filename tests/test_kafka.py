"""Kafka ingestion against a real broker (Tansu) and real stores (SQLite, PostgreSQL).

What must hold, whatever happens to the consumers: every good message ends recorded
exactly once (redeliveries counted as duplicates, never stored twice), in the order
its relationship's partition delivered it, so the stored chains equal those of
ingesting the same lines from a file; every bad message ends unchanged in the
dead-letter topic with its reason and origin. The expectations come from
`consumers.jsonl`, the already-tested file path, never from the Kafka code under test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from broker import create_topic, kafka_bootstrap_fixture, read_topic  # noqa: F401
from eventsourcing.persistence import Tracking
from kafka import KafkaProducer

from consumers.jsonl import ingest_lines
from consumers.kafka_consumer import ConsumerConfig, LedgerConsumer
from consumers.kafka_deadletter import ORIGIN_OFFSET, ORIGIN_PARTITION, ORIGIN_TOPIC, REASON
from consumers.kafka_positions import tracking_name
from consumers.publish import publish_lines
from domain.contract import parse_interaction
from domain.ledger import Outcome, PositionAlreadyRecorded, RelationshipLedger, StoredInteraction
from relledger.simulate import simulate
from relledger.store import open_ledger

ROOT = Path(__file__).parents[1]
DATA = ROOT / "tests" / "data"
WORKER = ROOT / "tests" / "kafka_worker.py"
PARTITIONS = 4
SESSION_TIMEOUT_MS = 3000
HEARTBEAT_INTERVAL_MS = 500

Snapshot = dict[str, list[tuple[int, str, str, bool, str]]]

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


# -- helpers -----------------------------------------------------------------------


def snapshot(ledger: RelationshipLedger) -> Snapshot:
    """Per relationship, every stored interaction in order, with its flags and hash."""
    found: Snapshot = {}
    for stored in ledger.scan():
        assert isinstance(stored, StoredInteraction), stored
        record = stored.record
        found.setdefault(stored.relationship_id, []).append(
            (stored.version, record["source"], record["event_id"], stored.late, stored.chain_hash)
        )
    return found


def expected_from_file(lines: list[bytes], tmp_path: Path) -> tuple[Snapshot, dict[bytes, str]]:
    """What ingesting `lines` as a JSONL file stores, and each rejected line's reason."""
    ledger = open_ledger(f"sqlite:///{tmp_path}/expected.db")
    try:
        report = ingest_lines(ledger, lines)
        rejected = {lines[r.line - 1]: str(r.error) for r in report.rejections}
        return snapshot(ledger), rejected
    finally:
        ledger.close()


def simulated_lines(relationships: int, events: int, seed: int) -> list[bytes]:
    return [
        json.dumps(event).encode()
        for event in simulate(relationships, events, seed=seed, prefix=f"kafka{seed}")
    ]


def stored_positions(ledger: RelationshipLedger, topic: str) -> dict[int, int]:
    positions = {}
    for partition in range(PARTITIONS):
        stored = ledger.positions.max_tracking_id(tracking_name(topic, partition))
        if stored is not None:
            positions[partition] = stored
    return positions


def wait_for_positions(
    store_url: str, topic: str, ends: dict[int, int], *, timeout_s: float = 30.0
) -> None:
    """Until the store holds every partition's end offset (read from a fresh connection)."""
    ledger = open_ledger(store_url)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if stored_positions(ledger, topic) == ends:
                return
            time.sleep(0.1)
        raise AssertionError(f"stored {stored_positions(ledger, topic)}, expected {ends}")
    finally:
        ledger.close()


def publish(bootstrap: str, topic: str, lines: list[bytes]) -> dict[int, int]:
    """Publish keyed lines; returns each partition's end offset (messages per partition)."""
    report = publish_lines(bootstrap, topic, lines)
    assert not report.unsent, report.unsent
    return report.partitions


class Worker:
    """A consumer-group member in its own process: `relledger consume` itself, or
    `tests/kafka_worker.py` (the same consumer, with a pause after each poll)."""

    def __init__(self, tmp_path: Path, name: str, *args: str) -> None:
        self.log_path = tmp_path / f"{name}.log"
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def assignment(self) -> set[int] | None:
        """The partitions of the latest assignment, or None before the first."""
        lines = [line for line in self.text().splitlines() if "assigned partitions=" in line]
        if not lines:
            return None
        names = lines[-1].split("assigned partitions=", 1)[1].strip()
        return set() if names == "-" else {int(n.split("[")[1][:-1]) for n in names.split(",")}

    def stop(self) -> dict[str, Any]:
        """SIGTERM, then the final counters it prints on a clean exit."""
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=30)
        self.log.close()
        assert self.process.returncode == 0, self.text()[-3000:]
        stats: dict[str, Any] = json.loads(out.decode())
        return stats

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        if worker.process.poll() is None:
            worker.kill()


def worker_args(bootstrap: str, topic: str, group: str, store_url: str, *extra: str) -> list[str]:
    """`relledger consume`, exactly as an operator runs it."""
    return [
        "-m",
        "relledger",
        "--db",
        store_url,
        "consume",
        "--bootstrap-servers",
        bootstrap,
        "--topic",
        topic,
        "--group",
        group,
        "--session-timeout-ms",
        str(SESSION_TIMEOUT_MS),
        "--heartbeat-interval-ms",
        str(HEARTBEAT_INTERVAL_MS),
        "--stats-interval",
        "2",
        *extra,
    ]


def slow_worker_args(bootstrap: str, topic: str, group: str, store_url: str) -> list[str]:
    """A deliberately slow member (small batches, a pause after each poll)."""
    return [
        str(WORKER),
        *("--bootstrap", bootstrap, "--topic", topic, "--group", group, "--db", store_url),
        *("--session-timeout-ms", str(SESSION_TIMEOUT_MS)),
        *("--heartbeat-interval-ms", str(HEARTBEAT_INTERVAL_MS)),
        *("--max-records", "20", "--pause-s", "0.05"),
    ]


def wait_until(condition: Any, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def prepare_store(store_url: str) -> None:
    """Create the schema before several processes open the store at once."""
    open_ledger(store_url).close()


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
    config = ConsumerConfig(
        kafka_bootstrap,
        topic,
        group_id=f"g-{topic}",
        max_records=200,
        poll_timeout_ms=200,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
    )
    consumer = LedgerConsumer(ledger, config)
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
        assert headers[REASON].decode() == rejected[record.value]
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

    ledger = open_ledger(store_url)
    try:
        assert snapshot(ledger) == expected
    finally:
        ledger.close()
    # The restart resumed exactly at the stored offsets: the batches the killed worker
    # had in hand are read again, nothing it had stored is.
    assert stats["consumed"] == total - at_kill


def expected_counts(expected: Snapshot, lines: list[bytes]) -> tuple[int, int]:
    """(recorded, duplicates) for a stream of good lines."""
    recorded = sum(len(chain) for chain in expected.values())
    return recorded, len(lines) - recorded


def assert_recorded_once(
    store_url: str, expected: Snapshot, lines: list[bytes], stats: list[dict[str, Any]]
) -> None:
    """The store holds exactly the file's chains; the members' counters add up to it."""
    ledger = open_ledger(store_url)
    try:
        assert snapshot(ledger) == expected
    finally:
        ledger.close()
    recorded, duplicates = expected_counts(expected, lines)
    assert sum(s["recorded"] for s in stats) == recorded
    assert sum(s["duplicates"] for s in stats) == duplicates


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
    "store_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
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
    items = [parse_interaction(line) for line in lines]
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


# -- a database outage ---------------------------------------------------------------


@pytest.mark.parametrize(
    "store_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_database_outage_is_retried_never_skipped(
    kafka_bootstrap: str, store_url: str, tmp_path: Path
) -> None:
    """The consumer's connection to PostgreSQL is cut (through a TCP proxy) for 1.5 s
    in the middle of the stream: the batch in hand waits and is retried until it
    is stored, nothing is skipped (a commit whose acknowledgement was lost is found in the
    store, not applied twice), and the end result is exactly the file's.

    The `eventsourcing` recorder retries such errors itself (10 attempts, each waiting up
    to the 5 s connect timeout), so an outage this short never reaches the consumer's own
    backoff, which takes over for longer ones."""
    lines = simulated_lines(20, 40, seed=41)
    expected, _ = expected_from_file(lines, tmp_path)
    topic = create_topic(kafka_bootstrap, PARTITIONS)
    ends = publish(kafka_bootstrap, topic, lines)
    parts = urlsplit(store_url)
    with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        netloc = f"{parts.username}@127.0.0.1:{proxy.port}"
        ledger = open_ledger(urlunsplit(parts._replace(netloc=netloc)))
        config = ConsumerConfig(
            kafka_bootstrap,
            topic,
            group_id=f"g-{topic}",
            max_records=20,
            poll_timeout_ms=200,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        )
        consumer = LedgerConsumer(ledger, config)
        restore = threading.Timer(1.5, proxy.restore)
        cut_at = 0.0
        try:
            deadline = time.monotonic() + 30
            while consumer.positions() != ends and time.monotonic() < deadline:
                consumer.poll_once()
                if consumer.stats.batches and not proxy.cuts:
                    assert consumer.positions() != ends
                    proxy.cut()  # the next batch meets the outage
                    cut_at = time.monotonic()
                    restore.start()
            assert time.monotonic() - cut_at >= 1.5  # it waited for the store to return
            assert consumer.positions() == ends
        finally:
            if proxy.cuts:
                restore.join()
            consumer.close()
            ledger.close()
    ledger = open_ledger(store_url)
    try:
        assert snapshot(ledger) == expected
    finally:
        ledger.close()


class TcpProxy:
    """Forwards TCP connections to a server; `cut()` drops them all and refuses new ones
    until `restore()`: a network outage that only this test's connections see."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.up = threading.Event()
        self.up.set()
        self.cuts = 0
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()
        self._drop_all()

    def cut(self) -> None:
        self.cuts += 1
        self.up.clear()
        self._drop_all()

    def restore(self) -> None:
        self.up.set()

    def _drop_all(self) -> None:
        with self._lock:
            dropping, self._open = self._open, []
        for sock in dropping:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up.is_set():
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
