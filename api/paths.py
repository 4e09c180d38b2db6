"""Relationship ids in one path segment, `/` included: `/v1/relationships/acme%2Fsteady`.

uvicorn hands the application a path already percent-decoded, where `acme%2Fsteady`
has become two segments and no route matches. `EncodedSlashes` rebuilds the path from
the raw one, decoding each segment but keeping `/` (and `%`, so that decoding is
exact) encoded inside it; `relationship_id` then decodes the path parameter once.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import unquote

from fastapi import Path
from starlette.types import ASGIApp, Receive, Scope, Send


def _segment(raw: str) -> str:
    return unquote(raw).replace("%", "%25").replace("/", "%2F")


class EncodedSlashes:
    """ASGI middleware: `scope["path"]` with `%2F` kept inside its segment."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get("raw_path")
        if scope["type"] == "http" and raw:
            text = raw.decode("latin-1").split("?", 1)[0]
            scope = {**scope, "path": "/".join(_segment(part) for part in text.split("/"))}
        await self.app(scope, receive, send)


def relationship_id(
    relationship_id: Annotated[
        str,
        Path(description="The relationship_id, percent-encoded as one segment (`/` as %2F)."),
    ],
) -> str:
    """The id as producers wrote it."""
    return unquote(relationship_id)
