"""How requests share the store: one `LedgerService` per process, one lock for writes.

The service is not thread-safe by design, but most of it need not be: every query
opens its own transaction from the datastore's connection pool, so reads run side by
side in FastAPI's threadpool (a standing answers in a few milliseconds, and a slow
audit does not hold up the others). Recording and projecting keep state in the
ledger's application and the projector, so they run one at a time, under `writes`.
Several processes (replicas) on one store are safe: the ledger and the projector
coordinate through the database, as several `relledger ingest` processes do.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from fastapi import Request

from api.instruments import Metrics
from domain.contract import DEFAULT_LIMITS, IntakeLimits, Interaction
from domain.ledger import Outcome
from service.ledger_service import LedgerService

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
BATCH_SIZE = 500
"""Interactions per transaction within one posted batch (as `relledger ingest`)."""


@dataclass(frozen=True)
class Settings:
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    limits: IntakeLimits = DEFAULT_LIMITS


@dataclass
class Shared:
    service: LedgerService
    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    writes: threading.Lock = field(default_factory=threading.Lock)

    def record(self, items: Sequence[Interaction]) -> list[Outcome]:
        with self.writes:
            return self.service.record(items)

    def catch_up(self) -> None:
        """Bring the read models up to date, so that a following GET sees what was
        recorded (by this request, or by another replica)."""
        with self.writes:
            self.service.catch_up()


def shared(request: Request) -> Shared:
    """The dependency routes declare to reach the store."""
    return cast(Shared, request.app.state.shared)
