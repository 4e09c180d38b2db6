"""`POST /v1/interactions` (role `producer`): record interactions over HTTP.

A batch (NDJSON, one interaction/v1 per line, or a JSON array) is recorded exactly as
`relledger ingest` records a file: the valid items are recorded, in transactions of
500, and each refused one is reported by its 1-based item number. A single JSON
object gets a status of its own: 201 recorded, 200 duplicate, 422 refused, 409 for an
event id reused with other content. Either way the read models are brought up to date
before the answer, so a following GET sees what was recorded.

The body is read before anything is parsed, but never more than `--max-body-bytes`:
a larger Content-Length is refused at once (413), and so is a body that grows past the
limit while it streams in. Each item is then checked by the contract
(`parse_interaction`, with the server's intake limits), strictly, like a file line.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import require
from api.errors import BodyTooLarge
from api.render import json_response
from api.shared import BATCH_SIZE, Shared, shared
from consumers.jsonl import IngestReport, LineRejection
from domain.contract import parse_interaction
from domain.errors import ContractViolation, InteractionRejected
from domain.ledger import Outcome
from domain.relationship import Recorded
from service.keys import Role

router = APIRouter(tags=["record"], dependencies=[Depends(require(Role.PRODUCER))])

NDJSON = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines")
_WHITESPACE = " \t\r\n"
_SPAN = json.JSONDecoder()

_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-ndjson": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {
                "schema": {"oneOf": [{"type": "object"}, {"type": "array", "items": {}}]}
            },
        },
    }
}


@router.post(
    "/v1/interactions",
    openapi_extra=_BODY_DOC,
    responses={
        201: {"description": "The single interaction was recorded."},
        409: {"description": "Its (source, event_id) was recorded with other content."},
        413: {"description": "The body is over the server's limit."},
        422: {"description": "Not JSON, or the single interaction was refused."},
    },
)
async def record(request: Request, store: Annotated[Shared, Depends(shared)]) -> Response:
    """Record one interaction (a JSON object) or a batch (NDJSON, or a JSON array)."""
    body = await _bounded_body(request, store.settings.max_body_bytes)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media in NDJSON:
        return await run_in_threadpool(_batch, store, body.split(b"\n"))
    text = _text(body)
    if text.lstrip(_WHITESPACE).startswith("["):
        items = [part.encode() for part in _array_items(text)]
        return await run_in_threadpool(_batch, store, items)
    return await run_in_threadpool(_single, store, body)


async def _bounded_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is {declared} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(f"the body is over the limit of {limit} bytes")
    return bytes(body)


def _single(store: Shared, body: bytes) -> Response:
    limits = store.settings.limits
    try:
        item = parse_interaction(body, received_at=datetime.now(UTC), limits=limits)
        outcome = store.record([item])[0]
        if isinstance(outcome, InteractionRejected):
            raise outcome
    except InteractionRejected as refused:
        store.metrics.count(_one(refused))
        raise
    store.metrics.count(_one(outcome))
    if outcome is Recorded.DUPLICATE:
        return json_response({"outcome": outcome.value})
    store.catch_up()
    return json_response({"outcome": outcome.value}, status_code=201)


def _one(outcome: Outcome) -> IngestReport:
    report = IngestReport()
    report.count(outcome)
    return report


def _batch(store: Shared, lines: list[bytes]) -> Response:
    refused: list[LineRejection] = []
    report = store.service.ingest(
        lines,
        batch_size=BATCH_SIZE,
        limits=store.settings.limits,
        record=store.record,
        on_rejection=refused.append,
    )
    store.metrics.count(report)
    if report.recorded:
        store.catch_up()
    return json_response(
        {
            "recorded": report.recorded,
            "late": report.late,
            "duplicates": report.duplicates,
            "conflicts": report.conflicts,
            "rejected": [
                {"item": r.line, "field": r.error.field, "reason": r.error.reason} for r in refused
            ],
        }
    )


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ContractViolation(
            "json", f"not valid UTF-8 (byte {error.start}: {error.reason})"
        ) from None


def _array_items(text: str) -> list[str]:
    """The text of each element of a JSON array, each to be checked strictly as a line
    of a file would be (a lenient decoder only finds where each element ends)."""
    items: list[str] = []
    at = text.index("[") + 1
    try:
        while True:
            at = _skip(text, at)
            if text.startswith("]", at) and not items:
                break
            _, end = _SPAN.raw_decode(text, at)
            items.append(text[at:end])
            at = _skip(text, end)
            if text.startswith("]", at):
                break
            if not text.startswith(",", at):
                raise ValueError(f"expected ',' or ']' at character {at}")
            at += 1
    except (ValueError, RecursionError) as error:
        raise ContractViolation("json", f"not a valid JSON array ({error})") from None
    if text[_skip(text, at + 1) :]:
        raise ContractViolation("json", "not valid JSON (extra data after the array)")
    return items


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in _WHITESPACE:
        at += 1
    return at
