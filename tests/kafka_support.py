"""What the Kafka tests share: the file path as the oracle, store snapshots, positions,
and consumer-group members run as their own processes.

Expectations always come from `consumers.jsonl` (ingesting the same lines from a file),
never from the Kafka code under test. The conformance and simulated data are dated up
to years after today, so every consumer here accepts that much future skew.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conformance import FAR_SKEW

from consumers.jsonl import LineRejection, ingest_lines
from consumers.kafka_consumer import ConsumerConfig
from consumers.kafka_positions import tracking_name
from consumers.publish import publish_lines
from domain.ledger import RelationshipLedger
from domain.stored import StoredInteraction
from relledger.simulate import SIMULATED_HISTORY, simulate
from service.schema import migrate
from service.store import open_ledger

ROOT = Path(__file__).parents[1]
WORKER = ROOT / "tests" / "kafka_worker.py"
PARTITIONS = 4
SESSION_TIMEOUT_MS = 3000
HEARTBEAT_INTERVAL_MS = 500
LIMITS = SIMULATED_HISTORY  # the stories and the simulated streams run years past today

Snapshot = dict[str, list[tuple[int, str, str, bool, str]]]


def consumer_config(bootstrap: str, topic: str, **overrides: Any) -> ConsumerConfig:
    """A fast-joining in-process member of the group `g-{topic}`."""
    settings: dict[str, Any] = {
        "group_id": f"g-{topic}",
        "max_records": 200,
        "poll_timeout_ms": 200,
        "session_timeout_ms": SESSION_TIMEOUT_MS,
        "heartbeat_interval_ms": HEARTBEAT_INTERVAL_MS,
        "limits": LIMITS,
        **overrides,
    }
    return ConsumerConfig(bootstrap, topic, **settings)


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


def stored_snapshot(store_url: str) -> Snapshot:
    """`snapshot` of the store at `store_url`, opened and closed here."""
    ledger = open_ledger(store_url)
    try:
        return snapshot(ledger)
    finally:
        ledger.close()


def expected_from_file(
    lines: list[bytes], tmp_path: Path
) -> tuple[Snapshot, dict[bytes, tuple[str, str]]]:
    """What ingesting `lines` as a JSONL file stores, and each rejected line's
    `(code, reason)`."""
    ledger = open_ledger(f"sqlite:///{tmp_path}/expected.db", create=True)
    rejected: dict[bytes, tuple[str, str]] = {}

    def note(rejection: LineRejection) -> None:
        rejected[lines[rejection.line - 1]] = (rejection.error.code, str(rejection.error))

    try:
        ingest_lines(ledger, lines, limits=LIMITS, on_rejection=note)
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


@pytest.fixture(name="workers")
def workers_fixture(tmp_path: Path) -> Iterator[list[Worker]]:
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
        *FAR_SKEW,
        *extra,
    ]


def slow_worker_args(bootstrap: str, topic: str, group: str, store_url: str) -> list[str]:
    """A deliberately slow member (small batches, a pause after each poll)."""
    return [
        str(WORKER),
        *("--bootstrap", bootstrap, "--topic", topic, "--group", group, "--db", store_url),
        *("--session-timeout-ms", str(SESSION_TIMEOUT_MS)),
        *("--heartbeat-interval-ms", str(HEARTBEAT_INTERVAL_MS)),
        *("--max-records", "20", "--pause-s", "0.05", *FAR_SKEW),
    ]


def wait_until(condition: Any, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def prepare_store(store_url: str) -> None:
    """`relledger migrate`, as a deployment does before its consumers start."""
    migrate(store_url)


def expected_counts(expected: Snapshot, lines: list[bytes]) -> tuple[int, int]:
    """(recorded, duplicates) for a stream of good lines."""
    recorded = sum(len(chain) for chain in expected.values())
    return recorded, len(lines) - recorded


def assert_recorded_once(
    store_url: str, expected: Snapshot, lines: list[bytes], stats: list[dict[str, Any]]
) -> None:
    """The store holds exactly the file's chains; the members' counters add up to it."""
    assert stored_snapshot(store_url) == expected
    recorded, duplicates = expected_counts(expected, lines)
    assert sum(s["recorded"] for s in stats) == recorded
    assert sum(s["duplicates"] for s in stats) == duplicates
