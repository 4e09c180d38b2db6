"""`create_app(url)`: the relledger HTTP API over one store, as a FastAPI application.

The store is opened (and checked to be migrated) when the app is created, so a server
with a wrong `--db` fails at start, not on its first request; it is closed when the
app shuts down. OpenAPI 3.1 is served at `/openapi.json`, interactive docs at `/docs`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI

from api import changes, errors, metrics, pages, routes_audit, routes_read, routes_record
from api.paths import EncodedSlashes
from api.render import JsonResponse
from api.shared import Settings, Shared
from service.ledger_service import LedgerService

DESCRIPTION = """An event-sourced relationship ledger over HTTP. Producers record
interactions; readers ask where relationships stand; auditors replay and verify from the
stored events. Every route but the health checks needs `Authorization: Bearer KEY`
(keys from `relledger keys create`). Errors answer `{"error": family, "detail": message}`."""


def create_app(url: str, settings: Settings | None = None) -> FastAPI:
    """The API over the migrated store at `url` (raises the service's errors if it cannot
    be opened)."""
    service = LedgerService.open(url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        service.close()

    app = FastAPI(
        title="relledger",
        version=_version(),
        description=DESCRIPTION,
        default_response_class=JsonResponse,
        lifespan=lifespan,
    )
    app.state.shared = Shared(service, settings or Settings())
    errors.install(app)
    routers = (
        routes_read.health,
        routes_record.router,
        routes_read.router,
        routes_audit.router,
        changes.router,
        metrics.router,
        pages.router,
    )
    for router in routers:
        app.include_router(router, responses=errors.RESPONSES)
    app.add_middleware(metrics.RequestTimer)
    app.add_middleware(EncodedSlashes)
    return app


def _version() -> str:
    try:
        return version("relledger")
    except PackageNotFoundError:
        return "0"
