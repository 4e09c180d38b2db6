"""JSON bodies as bytes, rendered once with orjson (fast, and strict about what it
accepts), so an ETag can hash exactly the bytes a client receives."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse, Response


def json_bytes(content: Any) -> bytes:
    return orjson.dumps(content)


class JsonResponse(JSONResponse):
    """The app's default response class: a JSONResponse (so the OpenAPI document shows
    each route's body schema) rendered by orjson."""

    def render(self, content: Any) -> bytes:
        return json_bytes(content)


def json_response(
    content: Any, *, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return JsonResponse(content, status_code=status_code, headers=headers)
