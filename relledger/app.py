"""The `relledger` Typer application and what its command modules share.

Command modules (`cli`, `cli_read`) register on `app`; only they and this module
know about options, exit codes and rendering. Errors of the ledger become a
message and an exit code here, never a traceback.
"""

from __future__ import annotations

import copy
import os
import sys
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from eventsourcing.persistence import PersistenceError
from typer.core import TyperGroup

from domain.contract import IntakeLimits
from domain.errors import (
    Conflict,
    Damaged,
    Forbidden,
    Invalid,
    LedgerError,
    NotFound,
    Rejected,
    Unauthenticated,
    Unavailable,
    Unverified,
)
from domain.text import one_line
from relledger import render
from service.ledger_service import LedgerService
from service.store import store_url_from

EXIT_REJECTED = 1
EXIT_UNKNOWN = 2
EXIT_STORE = 3
EXIT_UNEXPECTED = 4

DB_HELP = (
    "Store URL: sqlite:///path/file.db or postgresql://user@host:port/dbname "
    "[env RELLEDGER_DB; default sqlite:///relledger.db]"
)


class HelpfulGroup(TyperGroup):
    """A command group that, given no arguments, prints its help and exits 0 (click's
    `no_args_is_help` exits 2 since click 8.2: asking for nothing is not an error)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # ctx: typer's own (vendored) click Context, which typer does not export
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            typer.echo(ctx.get_help(), color=ctx.color)
            ctx.exit(0)
        return super().parse_args(ctx, args)


class RelledgerGroup(HelpfulGroup):
    """The `relledger` group: every command (and command group) under it also takes
    `--db`, so the store can be named after the command as well as before it. This is
    the one place that adds it: a copy of the group's own `--db` option, so it parses,
    completes and shows in each command's help the same. Given both ways, the one after
    the command wins (it is the nearer, and the later, of the two)."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        own = next(param for param in self.params if "--db" in getattr(param, "opts", ()))
        _add_db_option(own, self.commands.values())


def _add_db_option(own: Any, commands: Any) -> None:
    for command in commands:
        if not any("--db" in getattr(param, "opts", ()) for param in command.params):
            after = copy.copy(own)
            after.expose_value = False
            after.callback = _db_after_command
            command.params.append(after)
        if isinstance(command, TyperGroup):
            _add_db_option(own, command.commands.values())


def _db_after_command(ctx: typer.Context, _param: Any, value: str | None) -> None:
    shared = ctx.find_object(Context)
    if value is not None and shared is not None:
        shared.url = store_url_from(value)


app = typer.Typer(
    name="relledger",
    cls=RelledgerGroup,
    help="An event-sourced relationship ledger: record interactions, ask where each "
    "relationship stands and why, and audit its history.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)

T = TypeVar("T")

# `relledger --help` groups the commands by what a user is doing.
PANEL_RECORD = "Record interactions"
PANEL_QUERY = "Ask the read models"
PANEL_AUDIT = "Audit from the events"
PANEL_READ_MODELS = "Keep the read models current"


class Context:
    """What every command shares: the store URL, and the store once a command opens it
    (through the service layer, which refuses a store that was never migrated)."""

    def __init__(self, db: str | None, debug: bool = False) -> None:
        self.url = store_url_from(db)
        self.debug = debug
        self._service: LedgerService | None = None

    def service(self) -> LedgerService:
        if self._service is None:
            self._service = LedgerService.open(self.url)
        return self._service

    def close(self) -> None:
        """Give the store's connections back when the command ends (a pool left open
        keeps its server connections until the process exits)."""
        if self._service is not None:
            self._service.close()
            self._service = None


def _print_version(asked: bool) -> None:
    if not asked:
        return
    try:
        installed = package_version("relledger")
    except PackageNotFoundError:  # run from a checkout that was never installed
        installed = "unknown (not installed)"
    typer.echo(f"relledger {installed}")
    raise typer.Exit(0)


@app.callback()
def main_options(
    ctx: typer.Context,
    db: Annotated[
        str | None, typer.Option("--db", metavar="URL", help=DB_HELP, show_default=False)
    ] = None,
    debug: Annotated[
        bool,
        typer.Option("--debug", help="On an unexpected error, print the whole traceback."),
    ] = False,
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            expose_value=False,
            callback=_print_version,
            help="Print relledger's version and exit.",
        ),
    ] = False,
) -> None:
    ctx.obj = Context(db, debug)
    ctx.call_on_close(ctx.obj.close)


EXIT_CODES: tuple[tuple[type[LedgerError], int], ...] = (
    (Rejected, EXIT_REJECTED),
    (Unverified, EXIT_REJECTED),
    (NotFound, EXIT_UNKNOWN),
    (Invalid, EXIT_UNKNOWN),
    (Conflict, EXIT_UNKNOWN),
    (Unauthenticated, EXIT_UNKNOWN),
    (Forbidden, EXIT_UNKNOWN),
    (Unavailable, EXIT_STORE),
    (Damaged, EXIT_STORE),
    (LedgerError, EXIT_STORE),
)
"""The one map from error families (`domain.errors`) to exit codes; the first match wins."""


def exit_code(error: LedgerError) -> int:
    return next(code for family, code in EXIT_CODES if isinstance(error, family))


def run(action: Callable[[], T]) -> T:
    """Turn the ledger's own errors into a message and an exit code, never a traceback."""
    try:
        return action()
    except LedgerError as error:
        _fail(str(error), exit_code(error))
    except PersistenceError as error:  # the library's: locked, connection lost, ...
        _fail(f"the store failed: {one_line(error)}", EXIT_STORE)


def run_command() -> None:
    """The `relledger` entry point: anything the ledger did not expect ends as one line
    and exit 4 (1 means rejected lines or a broken chain, so it must not be reused);
    `--debug` (or RELLEDGER_DEBUG=1) adds the traceback."""
    try:
        app()
    except Exception as error:
        if "--debug" in sys.argv[1:] or os.environ.get("RELLEDGER_DEBUG") == "1":
            traceback.print_exc()
        render.err.print("[red]error:[/] unexpected ", end="")
        render.err.print(
            f"{one_line(error)[:300]} (run with --debug for the traceback)",
            markup=False,
            highlight=False,
        )
        raise SystemExit(EXIT_UNEXPECTED) from None


def _fail(message: str, code: int) -> NoReturn:
    render.err.print("[red]error:[/] ", end="")
    render.err.print(message, markup=False, highlight=False)
    raise typer.Exit(code) from None


def usage_error(message: str) -> NoReturn:
    """Bad arguments: one line naming the option, exit 2."""
    _fail(message, EXIT_UNKNOWN)


def output_choice(json: bool, csv: bool) -> None:
    """`--json` and `--csv` are two answers to one question: refuse both at once."""
    if json and csv:
        usage_error("--json and --csv: choose one")


def timestamp(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        raise typer.BadParameter(f"{value!r} has no timezone (add Z or +01:00)")
    return moment


JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for other programs.")]
CsvFlag = Annotated[
    bool,
    typer.Option("--csv", help="Print the table as CSV (RFC 4180: header row, CRLF, quoting)."),
]
RelId = Annotated[str, typer.Argument(help="The relationship_id producers use.")]

FutureSkewOption = Annotated[
    float,
    typer.Option(
        min=0,
        help="Days an occurred_at may lie after the recording time (clock drift allowance).",
    ),
]
LineBytesOption = Annotated[
    int, typer.Option(min=1, help="Longest line or message accepted, in bytes.")
]


def intake_limits(max_future_skew_days: float, max_message_bytes: int) -> IntakeLimits:
    return IntakeLimits(
        max_message_bytes=max_message_bytes, max_future_skew=timedelta(days=max_future_skew_days)
    )
