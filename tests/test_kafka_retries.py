"""The consumer's own retries, exercised for real: outages longer than any library retry.

The `eventsourcing` PostgreSQL recorder retries a failed call itself (10 attempts, each
waiting at most `service.store.POOL_WAIT_S` for a pooled connection, so at most about
12 s), and kafka-python retries sends, so a short outage never reaches the consumer.
These outages last longer: the store cut through a TCP proxy, and the dead-letter topic
on a broker that clients can only reach through another proxy. In each, the consumer's
retry counter must move and the result must still be exactly the file path's. A stop
request (SIGTERM to `relledger consume`) during an outage ends the process promptly and
leaves the stored positions as they were. A member whose batch another member stored
while it was deciding it drops that batch, re-reads from the stored position and
records what comes next.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from broker import (  # noqa: F401
    create_topic,
    free_port,
    kafka_bootstrap_fixture,
    read_topic,
    running_tansu,
    tansu_binary,
)
from kafka_support import (
    PARTITIONS,
    Worker,
    consumer_config,
    expected_from_file,
    prepare_store,
    publish,
    simulated_lines,
    snapshot,
    stored_positions,
    stored_snapshot,
    wait_for_positions,
    wait_until,
    worker_args,
    workers_fixture,  # noqa: F401
)
from tcp_proxy import TcpProxy

from consumers.kafka_consumer import LedgerConsumer
from consumers.kafka_deadletter import ORIGIN_OFFSET, ORIGIN_PARTITION
from domain.ledger import Outcome, RelationshipLedger
from service.store import POOL_WAIT_S, open_ledger

OUTAGE_S = 5.0
"""The dead-letter topic's outage: longer than one delivery attempt (1 s here)."""
STORE_ATTEMPT_S = 10 * (POOL_WAIT_S + 0.2)
"""The longest one store call lasts during an outage: the library's 10 attempts, each
waiting for a pooled connection, 0.2 s apart."""

postgres_only = pytest.mark.parametrize(
    "empty_store_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@contextmanager
def proxied_store(store_url: str) -> Iterator[tuple[TcpProxy, str]]:
    """A proxy in front of the PostgreSQL server, and the store URL through it."""
    parts = urlsplit(store_url)
    with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        netloc = f"{parts.username}@127.0.0.1:{proxy.port}"
        yield proxy, urlunsplit(parts._replace(netloc=netloc))


def consume_until(consumer: LedgerConsumer, ends: dict[int, int], timeout_s: float = 40) -> None:
    deadline = time.monotonic() + timeout_s
    while consumer.positions() != ends and time.monotonic() < deadline:
        consumer.poll_once()
    assert consumer.positions() == ends


@postgres_only
def test_database_outage_is_retried_never_skipped(
    kafka_bootstrap: str, store_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The store is cut while batches are in hand, and stays cut until the consumer's
    own retry has run (the library's retries gave up): nothing skipped, nothing twice."""
    lines = simulated_lines(20, 40, seed=41)
    expected, _ = expected_from_file(lines, tmp_path)
    topic = create_topic(kafka_bootstrap, PARTITIONS)
    ends = publish(kafka_bootstrap, topic, lines)
    with proxied_store(store_url) as (proxy, proxied_url):
        ledger = open_ledger(proxied_url)
        consumer = LedgerConsumer(
            ledger, consumer_config(kafka_bootstrap, topic, max_records=20, backoff_max_s=1.0)
        )

        def restore_once_retried() -> None:
            deadline = time.monotonic() + 2 * STORE_ATTEMPT_S
            while not consumer.stats.retries and time.monotonic() < deadline:
                time.sleep(0.05)
            proxy.restore()

        restore = threading.Thread(target=restore_once_retried, daemon=True)
        try:
            while not consumer.stats.batches:
                consumer.poll_once()
            stored_before = consumer.stats.consumed
            proxy.cut()  # the next batch meets the outage
            restore.start()
            consume_until(consumer, ends)
        finally:
            if restore.is_alive():
                restore.join()
            consumer.close()
            ledger.close()
    assert consumer.stats.retries > 0
    assert "retry 1 in " in caplog.text
    assert stored_before < len(lines)
    assert consumer.stats.consumed == len(lines)  # nothing skipped, nothing read twice
    assert consumer.stats.dropped == 0
    assert stored_snapshot(store_url) == expected


def test_dead_letter_topic_outage_is_retried_and_loses_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The dead-letter topic lives on a second broker, reachable only through a proxy
    that is cut for longer than a delivery attempt: batches with bad messages wait."""
    good = simulated_lines(10, 20, seed=43)
    bad = [line.replace(b'"kind": "', b'"kind": "x-') for line in good[::9]]
    lines = [*good[:20], *bad, *good[20:]]
    expected, rejected = expected_from_file(lines, tmp_path)
    assert len(rejected) == len(bad)
    topic = create_topic(kafka_bootstrap, PARTITIONS)
    ends = publish(kafka_bootstrap, topic, lines)
    binary = tansu_binary()
    assert binary is not None
    port = free_port()
    with (
        TcpProxy("127.0.0.1", port) as proxy,
        running_tansu(binary, port=port, advertised=f"127.0.0.1:{proxy.port}") as dlq_broker,
    ):
        dead_letter_topic = create_topic(dlq_broker, 1)
        ledger = open_ledger(f"sqlite:///{tmp_path}/ledger.db", create=True)
        config = consumer_config(
            kafka_bootstrap,
            topic,
            max_records=20,
            dead_letter_topic=dead_letter_topic,
            # Through the proxy, bootstrap included: a producer may send over its
            # bootstrap connection, which a direct address would keep out of the cut.
            dead_letter_bootstrap_servers=f"127.0.0.1:{proxy.port}",
            dead_letter_timeout_s=1.0,
            backoff_max_s=1.0,
        )
        consumer = LedgerConsumer(ledger, config)
        proxy.cut()

        def restore_once_retried() -> None:
            # Cut until the consumer has met the outage (joining the group may take
            # longer than any fixed outage), and for at least OUTAGE_S.
            deadline = time.monotonic() + 60
            while consumer.stats.retries == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(OUTAGE_S)
            proxy.restore()

        restore = threading.Thread(target=restore_once_retried)
        restore.start()
        try:
            consume_until(consumer, ends)
        finally:
            restore.join()
            consumer.close()
        try:
            assert snapshot(ledger) == expected
        finally:
            ledger.close()
        assert consumer.stats.retries > 0
        dead = read_topic(dlq_broker, dead_letter_topic)
    originals = {(r.partition, r.offset): r.value for r in read_topic(kafka_bootstrap, topic)}
    origins = {
        (int(dict(r.headers)[ORIGIN_PARTITION]), int(dict(r.headers)[ORIGIN_OFFSET])) for r in dead
    }
    assert {originals[origin] for origin in origins} == set(rejected)


@postgres_only
def test_stop_during_an_outage_leaves_the_stored_positions_and_exits_cleanly(
    kafka_bootstrap: str, store_url: str, tmp_path: Path, workers: list[Worker]
) -> None:
    """SIGTERM to `relledger consume` while its batch waits for a cut store: it exits 0
    within one store call (plus closing), prints its counters, and the store holds
    exactly what it held before the outage."""
    lines = simulated_lines(10, 20, seed=47)
    half = len(lines) // 2
    before, _ = expected_from_file(lines[:half], tmp_path)
    topic = create_topic(kafka_bootstrap, PARTITIONS)
    prepare_store(store_url)
    with proxied_store(store_url) as (proxy, proxied_url):
        args = worker_args(kafka_bootstrap, topic, f"g-{topic}", proxied_url)
        member = Worker(tmp_path, "member", *args)
        workers.append(member)
        first = publish(kafka_bootstrap, topic, lines[:half])
        wait_for_positions(store_url, topic, first)
        proxy.cut()
        publish(kafka_bootstrap, topic, lines[half:])
        wait_until(lambda: "retry 1 " in member.text(), "the consumer's own retry", timeout_s=30)
        signalled = time.monotonic()
        stats = member.stop()
        stopping_took = time.monotonic() - signalled
    # One store call already under way, then closing (Kafka, the connection pool).
    assert stopping_took < STORE_ATTEMPT_S + 8, stopping_took
    assert "stopping without storing the batch in hand" in member.text()
    ledger = open_ledger(store_url)
    try:
        assert stored_positions(ledger, topic) == first
        assert snapshot(ledger) == before
    finally:
        ledger.close()
    assert stats["retries"] > 0
    assert stats["consumed"] == half
    assert stats["recorded"] + stats["duplicates"] == half
    assert stats["recorded"] == sum(len(chain) for chain in before.values())


class HeldBeforeCommit:
    """Replaces a ledger's `record_batch`: the first batch is decided (against what the
    store holds then) and its `before_commit` hook run, then it waits for `release`
    before it is stored; a stale member, as after an eviction."""

    def __init__(self, ledger: RelationshipLedger) -> None:
        self.record_batch: Callable[..., list[Outcome]] = ledger.record_batch
        self.holding = threading.Event()
        self.release = threading.Event()

    def __call__(
        self,
        items: Sequence[Any],
        tracking: Any = None,
        before_commit: Callable[[Sequence[Outcome]], None] | None = None,
    ) -> list[Outcome]:
        def hold(outcomes: Sequence[Outcome]) -> None:
            if before_commit is not None:
                before_commit(outcomes)
            if not self.holding.is_set():
                self.holding.set()
                assert self.release.wait(60)

        return self.record_batch(items, tracking, before_commit=hold)


def test_a_stale_member_drops_the_batch_another_member_stored_and_continues(
    kafka_bootstrap: str, store_url: str, tmp_path: Path
) -> None:
    """Members A and B of two groups record one topic into one store: the positions are
    the store's, not a group's, so each owns every partition. A decides its first batch
    and is held before storing it; B stores the whole topic meanwhile. A's commit is then
    refused (`PositionAlreadyRecorded`): A drops that batch, re-reads from the stored
    position (skipping what B stored) and alone records everything published next."""
    lines = simulated_lines(16, 20, seed=61)
    half = len(lines) // 2
    expected, _ = expected_from_file(lines, tmp_path)
    (tmp_path / "before").mkdir()
    before, _ = expected_from_file(lines[:half], tmp_path / "before")
    topic = create_topic(kafka_bootstrap, PARTITIONS)
    first = publish(kafka_bootstrap, topic, lines[:half])
    prepare_store(store_url)
    ledgers = [open_ledger(store_url), open_ledger(store_url)]
    held = HeldBeforeCommit(ledgers[0])
    ledgers[0].record_batch = held  # type: ignore[method-assign]
    a_records = 10
    a = LedgerConsumer(
        ledgers[0],
        consumer_config(kafka_bootstrap, topic, group_id=f"a-{topic}", max_records=a_records),
    )
    b = LedgerConsumer(ledgers[1], consumer_config(kafka_bootstrap, topic, group_id=f"b-{topic}"))
    errors: list[BaseException] = []

    def until_dropped() -> None:
        try:
            while not a.stats.dropped:
                a.poll_once()
        except BaseException as error:
            errors.append(error)

    stale = threading.Thread(target=until_dropped, daemon=True)
    try:
        stale.start()
        assert held.holding.wait(30), "A never polled a batch"
        consume_until(b, first)
        b.close()
        held.release.set()
        stale.join(30)
        assert not stale.is_alive() and not errors, errors
        second = publish(kafka_bootstrap, topic, lines[half:])
        consume_until(a, {p: first.get(p, 0) + n for p, n in second.items()})
    finally:
        held.release.set()
        stale.join(30)
        a.close()
        b.close()
    try:
        assert snapshot(ledgers[1]) == expected
    finally:
        for ledger in ledgers:
            ledger.close()
    recorded_before = sum(len(chain) for chain in before.values())
    recorded = sum(len(chain) for chain in expected.values())
    assert (b.stats.recorded, b.stats.dropped, b.stats.consumed) == (recorded_before, 0, half)
    assert a.stats.consumed == len(lines) - half
    assert a.stats.recorded == recorded - recorded_before
    # A's stale reads end at its first refused batch of each partition: it seeks to the
    # stored position instead of reading (and dropping) the rest of what B stored.
    assert 0 < a.stats.dropped <= PARTITIONS * a_records < half
