"""`GET /metrics` (role `reader`): Prometheus text, for dashboards and alerts.

What an operator watches: interactions recorded, rejected, duplicated and in conflict
over HTTP (counters, this process since it started), how far the read models lag the
log and how many relationships are quarantined (gauges, read from the store at each
scrape, so every replica reports the same truth), and request latency per route (a
histogram). The instruments are in `api/instruments.py`.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import require
from api.instruments import Metrics
from api.shared import Shared, shared
from service.keys import Role

router = APIRouter(tags=["health"])


class RequestTimer:
    """ASGI middleware: observe each request's latency under its route template, never
    the raw path (ids would make one time series per relationship). Plain ASGI rather
    than Starlette's `BaseHTTPMiddleware`, which costs a fifth of a small GET here."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")
            metrics: Metrics = scope["app"].state.shared.metrics
            metrics.latency.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )


@router.get(
    "/metrics",
    dependencies=[Depends(require(Role.READER))],
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text."}},
)
async def metrics(store: Annotated[Shared, Depends(shared)]) -> Response:
    """Prometheus text exposition of the counters, gauges and latency histogram."""
    notes = await run_in_threadpool(store.service.notes)
    store.metrics.lag.set(notes.lag)
    store.metrics.quarantined.set(notes.quarantined)
    return Response(generate_latest(store.metrics.registry), media_type=CONTENT_TYPE_LATEST)
