"""Dead letters: bad messages forwarded unchanged, with the reason and where they came from.

A dead letter keeps the original key, value and headers byte for byte (a producer
can fix and resend it as is) and adds five headers: `relledger-error` (the family of
refusal: `contract`, `contradiction`, `conflict`, or `internal` for an error nobody
foresaw), `relledger-reason` (`field: reason`, as `relledger ingest` prints it) and the
origin topic, partition and offset.

A message too large to forward with those headers (over the producer's
`max_request_size`, or refused by the broker as too large) would otherwise block its
partition for ever; it is replaced by a *summary* (header `relledger-dead-letter:
summary`, the original key, a JSON value naming the origin, reason, size, SHA-256 and
first KiB of the original), so the consumer moves on and the original can still be
found in the source topic.

Dead letters are at-least-once: they are flushed before the database commit that moves
past them, so a crash in between sends them again; the origin headers identify
repeats.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kafka.errors import (  # type: ignore[import-untyped]
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)

from domain.errors import InteractionRejected, Unavailable
from domain.text import one_line

log = logging.getLogger("relledger.kafka")

ERROR = "relledger-error"
REASON = "relledger-reason"
ORIGIN_TOPIC = "relledger-origin-topic"
ORIGIN_PARTITION = "relledger-origin-partition"
ORIGIN_OFFSET = "relledger-origin-offset"
FORM = "relledger-dead-letter"
HEADERS = (ERROR, REASON, ORIGIN_TOPIC, ORIGIN_PARTITION, ORIGIN_OFFSET, FORM)

INTERNAL = "internal"
"""The code of a message that raised an error nobody foresaw while validated or decided."""
MAX_REASON_BYTES = 4096
"""A reason lists every broken rule; keep a pathological message's header bounded."""
MAX_INTERNAL_CHARS = 500
SUMMARY_HEAD_BYTES = 1024
SUMMARY_MAX_KEY_BYTES = 64 * 1024
"""A summary keeps the original key unless the key alone is this large."""
RECORD_OVERHEAD_BYTES = 512
"""More than a record batch's framing, so a letter judged to fit does fit."""
TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLargeError)


class DeadLetterUnavailable(Unavailable):
    """The dead-letter topic could not take a batch's bad messages; the batch is not
    committed (it is retried), so nothing moves past an undelivered dead letter."""


def refusal(error: BaseException) -> tuple[str, str]:
    """`(code, reason)` for a message that raised `error`: a rejection names its field;
    anything else is `internal`, with the error's type and a bounded message."""
    if isinstance(error, InteractionRejected):
        return error.code, str(error)
    reason = f"{INTERNAL}: {one_line(error)}"
    if len(reason) > MAX_INTERNAL_CHARS:
        reason = reason[: MAX_INTERNAL_CHARS - 3] + "..."
    return INTERNAL, reason


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One consumed message that will not be recorded, and why."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    code: str
    reason: str

    @classmethod
    def of(cls, record: Any, error: BaseException) -> DeadLetter:
        """From a kafka-python `ConsumerRecord` (untyped, hence `Any`) and what it raised."""
        code, reason = refusal(error)
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            headers=tuple((name, value) for name, value in record.headers or ()),
            code=code,
            reason=reason,
        )

    def _own_headers(self) -> list[tuple[str, bytes]]:
        return [
            (ERROR, self.code.encode()),
            (REASON, self.reason.encode()[:MAX_REASON_BYTES]),
            (ORIGIN_TOPIC, self.topic.encode()),
            (ORIGIN_PARTITION, str(self.partition).encode()),
            (ORIGIN_OFFSET, str(self.offset).encode()),
        ]

    def outgoing_headers(self) -> list[tuple[str, bytes]]:
        """The original headers (minus any earlier relledger ones) plus this letter's."""
        kept = [(name, value) for name, value in self.headers if name not in HEADERS]
        return [*kept, *self._own_headers()]

    def size(self) -> int:
        """Bytes on the wire, overestimated by a record batch's framing."""
        headers = sum(len(name) + len(value) for name, value in self.outgoing_headers())
        return len(self.key or b"") + len(self.value or b"") + headers + RECORD_OVERHEAD_BYTES

    def summary(self) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
        """`(key, value, headers)` standing in for this letter when it is too large."""
        original = self.value or b""
        body = {
            "origin": {"topic": self.topic, "partition": self.partition, "offset": self.offset},
            "code": self.code,
            "reason": self.reason[:MAX_REASON_BYTES],
            "size": len(original),
            "sha256": hashlib.sha256(original).hexdigest(),
            "head": original[:SUMMARY_HEAD_BYTES].decode("utf-8", errors="backslashreplace"),
        }
        key = self.key if self.key is None or len(self.key) <= SUMMARY_MAX_KEY_BYTES else None
        return key, json.dumps(body).encode(), [*self._own_headers(), (FORM, b"summary")]


class DeadLetterWriter:
    """Sends dead letters and waits until the broker has acknowledged every one."""

    def __init__(self, producer: Any, topic: str, *, timeout_s: float = 30.0) -> None:
        self.producer = producer
        self.topic = topic
        self.timeout_s = timeout_s
        self.max_bytes: int = producer.config["max_request_size"]

    def send_all(self, letters: Sequence[DeadLetter]) -> None:
        """Send `letters` and flush; raise `DeadLetterUnavailable` unless all were acked.

        Called before the database commit of their batch, so a failure here means
        the batch is retried rather than skipped. A letter too large to send goes as
        its summary.
        """
        if not letters:
            return
        try:
            sent = [
                (letter, self._send(letter, letter.size() > self.max_bytes)) for letter in letters
            ]
            self.producer.flush(timeout=self.timeout_s)
            resent = []
            for letter, future in sent:
                try:
                    future.get(timeout=self.timeout_s)
                except TOO_LARGE:
                    resent.append(self._send(letter, summary=True))
            if resent:
                self.producer.flush(timeout=self.timeout_s)
            for future in resent:
                future.get(timeout=self.timeout_s)
        except KafkaError as error:
            first = letters[0]
            raise DeadLetterUnavailable(
                f"could not deliver {len(letters)} dead letter(s) from {first.topic}"
                f"[{first.partition}] to {self.topic}: {error!r}; check that the broker is "
                f"up and the topic {self.topic} exists and accepts messages"
            ) from error

    def _send(self, letter: DeadLetter, summary: bool) -> Any:
        key: bytes | None
        value: bytes | None
        if summary:
            log.warning(
                "dead letter origin=%s[%s]@%s is too large to forward (%s bytes): sending "
                "its summary",
                letter.topic,
                letter.partition,
                letter.offset,
                len(letter.value or b""),
            )
            key, value, headers = letter.summary()
        else:
            key, value, headers = letter.key, letter.value, letter.outgoing_headers()
        try:
            return self.producer.send(self.topic, key=key, value=value, headers=headers)
        except TOO_LARGE:
            if summary:
                raise
            return self._send(letter, summary=True)
