"""The `relledger` commands that record and replay: ingest, replay, demo, migrate.

Commands answering from the read models are in `cli_read`, those proving the
history intact in `cli_audit`; all register on the one Typer `app` (see
`relledger.app`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from consumers.jsonl import (
    IngestReport,
    LineRejection,
    OversizedLine,
    bounded_lines,
)
from domain.contract import DEFAULT_LIMITS, IntakeLimits, Interaction
from domain.ledger import Outcome
from relledger import cli_audit, cli_kafka, cli_keys, cli_read, cli_serve, render
from relledger.app import (
    EXIT_REJECTED,
    EXIT_UNKNOWN,
    PANEL_AUDIT,
    PANEL_RECORD,
    FutureSkewOption,
    JsonFlag,
    LineBytesOption,
    RelId,
    T,
    app,
    intake_limits,
    run,
    run_command,
    timestamp,
)
from service.ledger_service import LedgerService
from service.schema import migrate
from service.store import wait_for_store


@contextmanager
def _opened(paths: list[str]) -> Iterator[list[tuple[str, BinaryIO, int | None]]]:
    handles: list[tuple[str, BinaryIO, int | None]] = []
    try:
        for name in paths:
            if name == "-":
                handles.append(("<stdin>", sys.stdin.buffer, None))
                continue
            path = Path(name)
            try:
                handles.append((name, path.open("rb"), path.stat().st_size))
            except OSError as error:
                render.err.print(f"[red]error:[/] cannot read {name}: {error.strerror}")
                raise typer.Exit(EXIT_UNKNOWN) from None
        yield handles
    finally:
        for name, handle, _ in handles:
            if name != "<stdin>":
                handle.close()


@app.command(rich_help_panel=PANEL_RECORD)
def ingest(
    ctx: typer.Context,
    paths: Annotated[
        list[str], typer.Argument(help="JSONL files of interaction/v1 ('-' = stdin).")
    ],
    batch_size: Annotated[int, typer.Option(min=1, help="Interactions per transaction.")] = 500,
    max_future_skew: FutureSkewOption = 1.0,
    max_line_bytes: LineBytesOption = DEFAULT_LIMITS.max_message_bytes,
    store_patience: Annotated[
        float,
        typer.Option(
            "--wait-for-store",
            min=0,
            help="Seconds to wait for an unreachable store before giving up.",
        ),
    ] = 300.0,
) -> None:
    """Record every valid line; report each rejected one as `line N: field: reason`."""
    limits = intake_limits(max_future_skew, max_line_bytes)

    def patiently(what: str, action: Callable[[], T]) -> T:
        say = partial(render.err.print, markup=False, highlight=False)
        return run(lambda: wait_for_store(action, what=what, patience_s=store_patience, say=say))

    service: LedgerService = patiently("open", ctx.obj.service)
    total = IngestReport()
    with _opened(paths) as handles:
        for name, handle, size in handles:
            prefix = f"{name}: " if len(handles) > 1 else ""

            def tell(rejection: LineRejection, prefix: str = prefix) -> None:
                render.err.print(f"{prefix}{rejection}", markup=False, highlight=False)

            def record(items: Sequence[Interaction]) -> list[Outcome]:
                return patiently("record", lambda: service.record(items))

            lines = bounded_lines(handle, limits.max_message_bytes)
            report = run(
                partial(_ingest_one, service, lines, name, size, batch_size, limits, record, tell)
            )
            total.add(report)
    try:
        projected = patiently("project", lambda: cli_read.project_now(service))
    except typer.Exit:  # what was recorded stays recorded: say so before the error's exit
        render.out.print(f"{total.summary()}; the read models were not brought up to date")
        raise
    render.out.print(f"{total.summary()}; read models at position {projected.position}")
    if total.rejected:
        raise typer.Exit(EXIT_REJECTED)


def _ingest_one(
    service: LedgerService,
    lines: Iterable[bytes | OversizedLine],
    name: str,
    size: int | None,
    batch_size: int,
    limits: IntakeLimits,
    record: Callable[[Sequence[Interaction]], list[Outcome]],
    tell: Callable[[LineRejection], None],
) -> IngestReport:
    show_bar = render.err.is_terminal and (size is None or size > 1_000_000)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=render.err,
        disable=not show_bar,
        transient=True,
    ) as progress:
        task = progress.add_task(f"ingesting {name}", total=size)
        return service.ingest(
            lines,
            batch_size=batch_size,
            limits=limits,
            record=record,
            on_rejection=tell,
            on_progress=lambda done: progress.update(task, completed=done),
        )


@app.command(rich_help_panel=PANEL_AUDIT)
def replay(
    ctx: typer.Context,
    relationship_id: RelId,
    as_of: Annotated[
        str | None, typer.Option(help="Only events that occurred at or before this ISO time.")
    ] = None,
    version: Annotated[
        int | None, typer.Option(min=1, help="Only the first N recorded events.")
    ] = None,
    policy: Annotated[
        Path | None, typer.Option(help="Score with this policy file instead of the live one.")
    ] = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify/--no-verify",
            help="Verify the events replayed first, and refuse (exit 1) if they fail; "
            "--no-verify replays them anyway, labelled unverified.",
        ),
    ] = True,
    json: JsonFlag = False,
) -> None:
    """Audit replay: recompute a relationship from its stored events alone, once they verify."""
    moment = timestamp(as_of)
    view: dict[str, Any] = run(
        lambda: ctx.obj.service().replay(
            relationship_id,
            as_of=moment,
            version=version,
            policy_file=policy,
            verify=verify,
        )
    )
    if json:
        render.print_json(view)
        return
    if not view["verified"]:
        render.err.print(
            f"[yellow]unverified:[/] replayed from the stored events of "
            f"{escape(relationship_id)} without verifying them (relledger verify checks them)"
        )
    limits = [
        f"as of {moment.isoformat()}" if moment else "",
        f"first {version}" if version else "",
    ]
    title = " ".join([relationship_id, *filter(None, limits)])
    render.out.print(render.standing_table(view, title))


@app.command(rich_help_panel=PANEL_RECORD)
def demo(
    ctx: typer.Context,
    relationships: Annotated[int, typer.Option(min=1, help="How many relationships.")] = 60,
    events: Annotated[int, typer.Option(min=2, help="Mean events per relationship.")] = 40,
    seed: Annotated[int, typer.Option(help="Same seed, same data set.")] = 7,
) -> None:
    """Generate a realistic data set, ingest it into the store and summarise it."""
    from relledger.demo import run_demo

    def go() -> None:
        migrate(ctx.obj.url)  # the demo is a newcomer's first command: it prepares its store
        run_demo(ctx.obj.service(), relationships, events, seed)

    run(go)


@app.command("migrate", rich_help_panel=PANEL_RECORD)
def migrate_command(ctx: typer.Context) -> None:
    """Create the store's tables, or bring an older store up to date. Safe to run again.

    Every other command refuses a store this has not prepared, and creates nothing."""
    done = run(lambda: migrate(ctx.obj.url))
    render.out.print(done.summary())


def main() -> None:
    run_command()


__all__ = ["app", "cli_audit", "cli_kafka", "cli_keys", "cli_read", "cli_serve", "main"]
