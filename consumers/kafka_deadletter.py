"""Dead letters: bad messages forwarded unchanged, with the reason and where they came from.

A dead letter keeps the original key, value and headers byte for byte (a producer
can fix and resend it as is) and adds four headers: `relledger-reason` (`field:
reason`, as `relledger ingest` prints it) and the origin topic, partition and offset.
Dead letters are at-least-once: they are flushed before the database commit that moves
past them, so a crash in between sends them again; the origin headers identify
repeats.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kafka.errors import KafkaError  # type: ignore[import-untyped]

from domain.errors import LedgerError

REASON = "relledger-reason"
ORIGIN_TOPIC = "relledger-origin-topic"
ORIGIN_PARTITION = "relledger-origin-partition"
ORIGIN_OFFSET = "relledger-origin-offset"
HEADERS = (REASON, ORIGIN_TOPIC, ORIGIN_PARTITION, ORIGIN_OFFSET)

MAX_REASON_BYTES = 4096
"""A reason lists every broken rule; keep a pathological message's header bounded."""


class DeadLetterUnavailable(LedgerError):
    """The dead-letter topic could not take a batch's bad messages; the batch is not
    committed (it is retried), so nothing moves past an undelivered dead letter."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One consumed message that will not be recorded, and why."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    reason: str

    @classmethod
    def of(cls, record: Any, reason: str) -> DeadLetter:
        """From a kafka-python `ConsumerRecord` (untyped, hence `Any`)."""
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            headers=tuple((name, value) for name, value in record.headers or ()),
            reason=reason,
        )

    def outgoing_headers(self) -> list[tuple[str, bytes]]:
        """The original headers (minus any earlier relledger ones) plus this letter's."""
        kept = [(name, value) for name, value in self.headers if name not in HEADERS]
        return [
            *kept,
            (REASON, self.reason.encode()[:MAX_REASON_BYTES]),
            (ORIGIN_TOPIC, self.topic.encode()),
            (ORIGIN_PARTITION, str(self.partition).encode()),
            (ORIGIN_OFFSET, str(self.offset).encode()),
        ]


class DeadLetterWriter:
    """Sends dead letters and waits until the broker has acknowledged every one."""

    def __init__(self, producer: Any, topic: str, *, timeout_s: float = 30.0) -> None:
        self.producer = producer
        self.topic = topic
        self.timeout_s = timeout_s

    def send_all(self, letters: Sequence[DeadLetter]) -> None:
        """Send `letters` and flush; raise `DeadLetterUnavailable` unless all were acked.

        Called before the database commit of their batch, so a failure here means
        the batch is retried rather than skipped.
        """
        if not letters:
            return
        try:
            futures = [
                self.producer.send(
                    self.topic,
                    key=letter.key,
                    value=letter.value,
                    headers=letter.outgoing_headers(),
                )
                for letter in letters
            ]
            self.producer.flush(timeout=self.timeout_s)
            for future in futures:
                future.get(timeout=self.timeout_s)
        except KafkaError as error:
            first = letters[0]
            raise DeadLetterUnavailable(
                f"could not deliver {len(letters)} dead letter(s) from {first.topic}"
                f"[{first.partition}] to {self.topic}: {error!r}; check that the broker is "
                f"up and the topic {self.topic} exists and accepts messages of this size"
            ) from error
