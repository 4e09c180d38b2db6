"""`relledger serve`: the HTTP API (`api/`) on uvicorn.

On a loopback address the server is reachable only from this machine; anywhere else it
refuses to start while the store holds no active API key, since nobody could use it
(every route but the health checks needs one) and such a server is usually a mistake.
SIGTERM (and Ctrl-C) stop it gracefully: uvicorn stops accepting connections and
finishes the requests in flight, then the command exits 0.
"""

from __future__ import annotations

import ipaddress
import signal
from datetime import timedelta
from typing import Annotated

import typer

from domain.contract import DEFAULT_LIMITS, IntakeLimits
from relledger import render
from relledger.app import EXIT_UNKNOWN, FutureSkewOption, LineBytesOption, app, run
from relledger.cli_keys import PANEL_SERVICE

GRACE_S = 30
"""How long a stopping server lets requests in flight finish."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command(rich_help_panel=PANEL_SERVICE)
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    max_body_bytes: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Largest request body accepted, in bytes [default: the API's, 16 MiB].",
            show_default=False,
        ),
    ] = None,
    max_future_skew: FutureSkewOption = 1.0,
    max_line_bytes: LineBytesOption = DEFAULT_LIMITS.max_message_bytes,
) -> None:
    """Serve the ledger over HTTP: the JSON API (OpenAPI at /openapi.json) and web pages at /."""
    # The web stack is imported here, not at start-up: every other command would pay
    # for it (about half a second) before it could even say that a store is down.
    import uvicorn

    from api.app import create_app
    from api.shared import DEFAULT_MAX_BODY_BYTES, Settings

    body_limit = DEFAULT_MAX_BODY_BYTES if max_body_bytes is None else max_body_bytes
    limits = IntakeLimits(
        max_message_bytes=max_line_bytes, max_future_skew=timedelta(days=max_future_skew)
    )
    api = run(lambda: create_app(ctx.obj.url, Settings(body_limit, limits)))
    if not is_loopback(host) and not run(api.state.shared.service.keys.any_active):
        render.err.print(
            f"error: refusing to serve on {host} with no active API key; create one first: "
            "relledger keys create --role reader --name NAME",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(EXIT_UNKNOWN)
    # uvicorn re-raises the stopping signal once it has shut down; these no-op handlers
    # receive it, so a graceful stop is a clean exit (0), not death by signal.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)
    uvicorn.run(api, host=host, port=port, timeout_graceful_shutdown=GRACE_S, log_level="info")
