"""`GET /v1/changes` (role `reader`): Server-Sent Events, one per standing change.

Each event is a relationship's standing (the `show --json` shape) as the read models
applied it, with `id` = the log position of the last event applied to it. A client
that disconnects reconnects with `Last-Event-ID` (browsers' EventSource does so by
itself; `?after=N` does the same for a first connection) and misses no relationship's
change: standings are read in the order the projector applied them, and a page of
the read models commits whole, so nothing can appear behind a position already seen.
A relationship changed several times while a client was away arrives once, as it
stands now. After `projections rebuild` switches generations, start again from 0.

The stream polls the read models (every `POLL_S`), so it also carries what other
replicas and `relledger project --follow` apply; a comment line keeps idle
connections open through proxies.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.auth import require
from api.shared import Shared, shared
from domain.errors import Invalid
from service.keys import Role

POLL_S = 0.5
KEEPALIVE_S = 15.0
PAGE = 500

router = APIRouter(tags=["read"], dependencies=[Depends(require(Role.READER))])


@router.get(
    "/v1/changes",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "An event stream."}},
)
async def changes(
    request: Request,
    store: Annotated[Shared, Depends(shared)],
    after: Annotated[int, Query(ge=0, description="Start after this log position.")] = 0,
    last_event_id: Annotated[str | None, Header(description="Resume after this id.")] = None,
) -> StreamingResponse:
    """Every standing change, as the read models apply it, from `after` (or the
    `Last-Event-ID` a reconnecting client sends) on."""
    start = after if last_event_id is None else _position(last_event_id)

    async def events() -> AsyncIterator[bytes]:
        position, quiet = start, 0.0
        while not await request.is_disconnected():
            found = await run_in_threadpool(store.service.changes_after, position, PAGE)
            for position, standing in found:
                yield b"id: %d\nevent: standing\ndata: %s\n\n" % (position, orjson.dumps(standing))
            if found:
                quiet = 0.0
                continue
            await asyncio.sleep(POLL_S)
            quiet += POLL_S
            if quiet >= KEEPALIVE_S:
                quiet = 0.0
                yield b": keep-alive\n\n"

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


def _position(last_event_id: str) -> int:
    if not last_event_id.isdigit():
        raise Invalid(f"Last-Event-ID: {last_event_id[:40]!r} is not a log position")
    return int(last_event_id)
