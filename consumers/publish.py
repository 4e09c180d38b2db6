"""Publishing JSONL to Kafka the way relledger's consumers expect it (and producers should).

Each line is sent as is, as the message value, keyed by its `relationship_id` (UTF-8):
Kafka's default partitioner sends one key to one partition, so one relationship has
one partition, one consuming owner and a preserved order. The contract itself is the
consumer's to check (a violation ends in the dead-letter topic with the reason); only
a line that gives no key (not a JSON object, or no string `relationship_id`) cannot be
placed, so it is reported and not sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from kafka import KafkaProducer  # type: ignore[import-untyped]
from kafka.errors import KafkaError  # type: ignore[import-untyped]

from domain.errors import Unavailable

CHECK_EVERY = 10_000
"""Acks are awaited every this many messages: bounded memory, early failure."""


class PublishFailed(Unavailable):
    """The broker did not acknowledge every message sent (the report says how many were)."""


@dataclass(frozen=True, slots=True)
class UnsentLine:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class PublishReport:
    sent: int = 0
    unsent: list[UnsentLine] = field(default_factory=list)
    partitions: dict[int, int] = field(default_factory=dict)
    """Messages acknowledged per partition."""


def message_key(line: bytes) -> bytes:
    """The Kafka key of one `interaction/v1` line: its `relationship_id`, UTF-8.

    Raises ValueError naming what is wrong when the line cannot be keyed.
    """
    try:
        message = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise ValueError(f"json: not valid JSON ({error})") from None
    if not isinstance(message, dict):
        raise ValueError("json: must be a JSON object")
    relationship_id = message.get("relationship_id")
    if not isinstance(relationship_id, str) or not relationship_id:
        raise ValueError("relationship_id: required (it is the message key)")
    return relationship_id.encode()


def publish_lines(
    producer_or_bootstrap: Any,
    topic: str,
    lines: Iterable[bytes],
    *,
    timeout_s: float = 60.0,
) -> PublishReport:
    """Send every keyable line to `topic`, wait for the broker's acks, report.

    `producer_or_bootstrap` is a `kafka.KafkaProducer` (left open) or a bootstrap
    string `host:port[,host:port]` (a producer is made and closed here). Blank lines
    are skipped silently, as `relledger ingest` does. Raises `PublishFailed` if the
    broker cannot be reached or a send was not acknowledged within `timeout_s`.
    """
    own = isinstance(producer_or_bootstrap, str)
    producer = _connect(producer_or_bootstrap) if own else producer_or_bootstrap
    report = PublishReport()
    pending: list[Any] = []
    try:
        for number, raw in enumerate(lines, start=1):
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            try:
                key = message_key(line)
            except ValueError as error:
                report.unsent.append(UnsentLine(number, str(error)))
                continue
            pending.append(producer.send(topic, key=key, value=line))
            if len(pending) >= CHECK_EVERY:
                _settle(producer, topic, pending, report, timeout_s)
        _settle(producer, topic, pending, report, timeout_s)
        return report
    finally:
        if own:
            producer.close(timeout=timeout_s)


def _settle(
    producer: Any, topic: str, pending: list[Any], report: PublishReport, timeout_s: float
) -> None:
    """Wait for the broker's acks of `pending`, count them, fail loudly on the first loss."""
    producer.flush(timeout=timeout_s)
    failures: list[BaseException] = []
    for future in pending:
        try:
            metadata = future.get(timeout=0)
        except KafkaError as error:
            failures.append(error)
            continue
        report.sent += 1
        report.partitions[metadata.partition] = report.partitions.get(metadata.partition, 0) + 1
    pending.clear()
    if failures:
        raise PublishFailed(
            f"{len(failures)} messages to {topic} were not acknowledged (first: "
            f"{failures[0]!r}); {report.sent} were. Check the broker and the topic; "
            "resending the file is safe (the ledger counts redeliveries as duplicates)"
        )


def _connect(bootstrap: str) -> Any:
    try:
        return KafkaProducer(bootstrap_servers=bootstrap.split(","), linger_ms=5)
    except KafkaError as error:
        raise PublishFailed(
            f"cannot reach Kafka at {bootstrap}: {error!r} (check the address and that the "
            "broker advertises one this machine can reach); nothing was sent"
        ) from error
