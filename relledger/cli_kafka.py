"""`relledger consume` and `relledger publish`: the ledger on Kafka.

Messages are `interaction/v1` JSON, keyed by `relationship_id` (one relationship,
one partition, one owner); see README "Publishing to relledger".
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from relledger import render
from service.ledger_service import LedgerService

if TYPE_CHECKING:
    from consumers.kafka_consumer import LedgerConsumer
    from consumers.kafka_stats import ConsumerStats
from domain.contract import DEFAULT_LIMITS
from relledger.app import (
    EXIT_REJECTED,
    EXIT_UNKNOWN,
    PANEL_RECORD,
    FutureSkewOption,
    JsonFlag,
    LineBytesOption,
    app,
    intake_limits,
    run,
)

Servers = Annotated[
    str,
    typer.Option(
        "--bootstrap-servers",
        envvar="RELLEDGER_KAFKA",
        help="Kafka brokers, host:port[,host:port] [env RELLEDGER_KAFKA].",
    ),
]
Topic = Annotated[str, typer.Option(help="The topic of interaction/v1 messages.")]


class _JsonLines(logging.Formatter):
    """One JSON object per log line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        return json.dumps(entry)


def _configure_logging(json_logs: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _JsonLines() if json_logs else logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    )
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    logging.getLogger("kafka").setLevel(logging.WARNING)  # its INFO is per-connection chatter


@app.command(rich_help_panel=PANEL_RECORD)
def consume(
    ctx: typer.Context,
    bootstrap_servers: Servers,
    topic: Topic,
    group: Annotated[str, typer.Option(help="Consumer group; run more members to scale.")] = (
        "relledger"
    ),
    dead_letter_topic: Annotated[
        str | None, typer.Option(help="Where bad messages go (default: TOPIC.dlq).")
    ] = None,
    dead_letter_bootstrap_servers: Annotated[
        str | None,
        typer.Option(help="Brokers of the dead-letter topic (default: --bootstrap-servers)."),
    ] = None,
    max_records: Annotated[int, typer.Option(min=1, help="Messages per poll.")] = 2000,
    stats_interval: Annotated[
        float, typer.Option(min=0, help="Seconds between `stats` log lines (0: only at exit).")
    ] = 30.0,
    session_timeout_ms: Annotated[
        int, typer.Option(min=1000, help="A dead member is noticed after about this long.")
    ] = 6000,
    heartbeat_interval_ms: Annotated[int, typer.Option(min=100)] = 1000,
    json_logs: Annotated[bool, typer.Option("--json-logs", help="Log JSON lines.")] = False,
    max_future_skew: FutureSkewOption = 1.0,
    max_message_bytes: LineBytesOption = DEFAULT_LIMITS.max_message_bytes,
    idle_exit: Annotated[
        float | None,
        typer.Option(help="Stop after this many seconds without a message (batch jobs)."),
    ] = None,
) -> None:
    """Record a Kafka topic into the ledger, as one member of a consumer group."""
    # kafka-python is imported here, not at start-up: other commands need not pay for it.
    from consumers.kafka_consumer import ConsumerConfig, LedgerConsumer, install_stop_signals

    _configure_logging(json_logs)
    config = ConsumerConfig(
        bootstrap_servers=bootstrap_servers,
        topic=topic,
        group_id=group,
        dead_letter_topic=dead_letter_topic,
        dead_letter_bootstrap_servers=dead_letter_bootstrap_servers,
        limits=intake_limits(max_future_skew, max_message_bytes),
        max_records=max_records,
        stats_interval_s=stats_interval,
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=heartbeat_interval_ms,
        poll_timeout_ms=min(1000, session_timeout_ms // 3),
    )
    stop = threading.Event()
    install_stop_signals(stop)
    service: LedgerService = run(ctx.obj.service)
    try:
        stats = run(lambda: _consume(LedgerConsumer(service.ledger, config), stop, idle_exit))
    finally:
        service.close()
    render.print_json(stats.fields())


def _consume(
    consumer: LedgerConsumer, stop: threading.Event, idle_exit: float | None
) -> ConsumerStats:
    if idle_exit is None:
        return consumer.run(stop)
    with consumer:
        last_message = time.monotonic()
        while not stop.is_set():
            if consumer.poll_once(stop):
                last_message = time.monotonic()
            elif time.monotonic() - last_message >= idle_exit:
                break
    return consumer.stats


@app.command(rich_help_panel=PANEL_RECORD)
def publish(
    paths: Annotated[list[Path], typer.Argument(help="JSONL files of interaction/v1.")],
    bootstrap_servers: Servers,
    topic: Topic,
    json: JsonFlag = False,
) -> None:
    """Send JSONL lines to Kafka, each keyed by its relationship_id (what producers do)."""
    from consumers.publish import publish_lines

    unsent = 0
    for path in paths:
        if not path.is_file():
            render.err.print(f"[red]error:[/] cannot read {path}")
            raise typer.Exit(EXIT_UNKNOWN)
        with path.open("rb") as handle:
            report = run(lambda: publish_lines(bootstrap_servers, topic, handle))
        for line in report.unsent:
            render.err.print(f"{path}: {line}", markup=False)
        unsent += len(report.unsent)
        spread = ", ".join(f"{p}: {n}" for p, n in sorted(report.partitions.items()))
        if json:
            render.print_json_line(
                {
                    "path": str(path),
                    "topic": topic,
                    "sent": report.sent,
                    "unsent": len(report.unsent),
                    "partitions": {str(p): n for p, n in sorted(report.partitions.items())},
                }
            )
        else:
            render.out.print(f"{path}: sent {report.sent} to {topic} (partitions {spread or '-'})")
    if unsent:
        raise typer.Exit(EXIT_REJECTED)
