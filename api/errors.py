"""The one map from error families (`domain.errors`) to HTTP statuses, and the one error
shape every failure answers with: `{"error": family, "detail": message}`, plus `field`
and `reason` when an interaction was refused.

The CLI's equivalent is `relledger.app.EXIT_CODES`. Errors raised by FastAPI itself
(bad query parameters, unknown routes) and by the persistence library are translated
into the same families first, so a client reads one shape whatever failed.
"""

from __future__ import annotations

import logging
from typing import Any

from eventsourcing.persistence import PersistenceError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from api.render import json_response
from domain.errors import (
    Conflict,
    Damaged,
    Forbidden,
    InteractionRejected,
    Invalid,
    LedgerError,
    NotFound,
    Rejected,
    Unauthenticated,
    Unavailable,
    Unverified,
)
from domain.text import one_line

log = logging.getLogger("relledger.api")


class ErrorBody(BaseModel):
    """What every failure answers: the error family, one line of detail, and for a
    refused interaction the field to fix and why."""

    error: str
    detail: str
    field: str | None = None
    reason: str | None = None


def _documented(why: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": why}


RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _documented("No key, or one nobody issued or that was revoked."),
    403: _documented("The key's role does not allow this route."),
    404: _documented("The relationship (or policy) does not exist."),
    409: _documented("An event id reused with other content, or a history failing verification."),
    413: _documented("The body is over the server's limit."),
    422: _documented("A refused interaction, body or parameter."),
    500: _documented("The store holds something unreadable, or a bug."),
    503: _documented("The store does not answer."),
}
"""Documented on every route (through each router), replacing FastAPI's own 422 shape:
every failure answers `ErrorBody`."""


class BodyTooLarge(Rejected):
    """A request body over the server's `--max-body-bytes` (refused before it is read)."""


STATUSES: tuple[tuple[type[LedgerError], int], ...] = (
    (Conflict, 409),  # before Rejected: a reused event id is both
    (BodyTooLarge, 413),
    (Rejected, 422),
    (Invalid, 422),
    (NotFound, 404),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (Unavailable, 503),
    (Unverified, 409),  # the history fails its hashes or a signed checkpoint
    (Damaged, 500),
    (LedgerError, 500),
)
"""The one map from error families to statuses; the first match wins."""


def status_of(error: LedgerError) -> int:
    return next(status for family, status in STATUSES if isinstance(error, family))


def family_of(error: LedgerError) -> str:
    """The family's name (a class of `domain.errors`), as the `error` field says it."""
    return next(
        family.__name__
        for family, _ in STATUSES
        if family.__module__ == LedgerError.__module__ and isinstance(error, family)
    )


def error_response(error: LedgerError) -> Response:
    body: dict[str, Any] = {"error": family_of(error), "detail": str(error)}
    if isinstance(error, InteractionRejected):
        body["field"] = error.field
        body["reason"] = error.reason
    status = status_of(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return json_response(body, status_code=status, headers=headers)


_BY_STATUS: dict[int, type[LedgerError]] = {
    404: NotFound,
    405: Invalid,
    401: Unauthenticated,
    403: Forbidden,
}


def store_failed(error: PersistenceError) -> Unavailable:
    """The library's own error (a lost connection, a locked database) as the family the
    faces answer for it."""
    return Unavailable(f"the store failed: {one_line(error)}")


def install(app: FastAPI) -> None:
    """Answer every failure in the one shape, with the status from `STATUSES`."""

    async def ledger_error(_: Request, error: Exception) -> Response:
        assert isinstance(error, LedgerError)
        return error_response(error)

    async def store_error(_: Request, error: Exception) -> Response:
        assert isinstance(error, PersistenceError)
        return error_response(store_failed(error))

    async def bad_request(_: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        return error_response(Invalid(_describe(error)))

    async def http_error(_: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        family = _BY_STATUS.get(error.status_code, Invalid)
        found = error_response(family(str(error.detail)))
        found.status_code = error.status_code
        return found

    async def unexpected(request: Request, error: Exception) -> Response:
        # Starlette re-raises after answering, and uvicorn then logs the traceback; this
        # line names the request it belongs to.
        log.error("unexpected error in %s %s", request.method, request.url.path)
        body = {
            "error": "Unexpected",
            "detail": f"unexpected {type(error).__name__} (a bug: see the server log)",
        }
        return json_response(body, status_code=500)

    app.add_exception_handler(LedgerError, ledger_error)
    app.add_exception_handler(PersistenceError, store_error)
    app.add_exception_handler(RequestValidationError, bad_request)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


def _describe(error: RequestValidationError) -> str:
    said = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem.get("loc", ()) if part != "query")
        said.append(f"{where}: {problem.get('msg', 'invalid')}")
    return "; ".join(said) or "invalid request"
