"""The commands that keep the read models current: `project`, `projections rebuild`,
`projections status`, and the catch-up that `ingest` and `demo` run before they return.

Apart from the questions of `cli_read`, because these write (or inspect) the read
models rather than read answers from them.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from projections import queries
from projections.projector import CatchUp
from projections.quarantine import Quarantined
from projections.rebuild import RebuildReport
from relledger import render
from relledger.app import (
    EXIT_REJECTED,
    EXIT_STORE,
    PANEL_READ_MODELS,
    HelpfulGroup,
    JsonFlag,
    app,
    run,
)
from service.ledger_service import LedgerService

projections_app = typer.Typer(
    cls=HelpfulGroup,
    help="Rebuild the read models from the log, or see how far behind they are.",
    no_args_is_help=True,
)
app.add_typer(projections_app, name="projections", rich_help_panel=PANEL_READ_MODELS)


def _progress(label: str, enabled: bool = True) -> Progress:
    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=render.err,
        disable=not (enabled and render.err.is_terminal),
        transient=True,
    )


def project_now(service: LedgerService, stop: threading.Event | None = None) -> CatchUp:
    """Bring the read models up to the log's head, with a progress bar on a terminal."""
    with _progress("projecting") as progress:
        task = progress.add_task("projecting", total=None)
        report = service.catch_up(
            stop, lambda done, head: progress.update(task, completed=done, total=head)
        )
    _tell_quarantined(report)
    return report


def _tell_quarantined(report: CatchUp) -> None:
    for found in report.quarantined:
        render.err.print(f"[red]quarantined[/] {escape(str(found))}")
    if report.quarantined:
        render.err.print(
            "the other relationships were projected; see relledger projections status, "
            "and rebuild once the cause is fixed"
        )


@app.command(rich_help_panel=PANEL_READ_MODELS)
def project(
    ctx: typer.Context,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep following the log until interrupted.")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=0.05, help="Seconds between polls when following.")
    ] = 0.5,
    json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print JSON: one object per catch-up (one line each when following)."
        ),
    ] = False,
) -> None:
    """Catch the read models up with the log (or keep following it)."""
    stop = _stop_on_signals()
    service: LedgerService = run(ctx.obj.service)
    report = run(lambda: project_now(service, stop))
    quarantined = f"; {len(report.quarantined)} quarantined" if report.quarantined else ""
    if json:
        render.print_json_line(_catch_up_view(report))
    else:
        render.out.print(
            f"read models at position {report.position} "
            f"({report.events} events applied{quarantined})"
        )
    if not follow or stop.is_set():
        return
    render.err.print("following the log; Ctrl-C to stop")

    def tell(step: CatchUp) -> None:
        if step.events and json:
            render.print_json_line(_catch_up_view(step))
        elif step.events:
            render.out.print(f"applied {step.events} events, at position {step.position}")
        _tell_quarantined(step)

    run(lambda: service.follow(stop, interval, on_caught_up=tell))


def _catch_up_view(report: CatchUp) -> dict[str, Any]:
    return {
        "position": report.position,
        "head": report.head,
        "events": report.events,
        "quarantined": [held.view() for held in report.quarantined],
    }


def _stop_on_signals() -> threading.Event:
    """SIGTERM/SIGINT: finish the page in hand, then stop; a second one acts at once."""
    stop = threading.Event()

    def handle(signum: int, _frame: object) -> None:
        stop.set()
        signal.signal(
            signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
        )

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handle)
    return stop


@projections_app.command("rebuild")
def rebuild_command(
    ctx: typer.Context,
    policy: Annotated[
        Path | None,
        typer.Option(help="Rebuild under this policy file (default: keep the live one)."),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Only compare with a fresh fold (and check the views the queries read); "
            "exit 1 on any difference.",
        ),
    ] = False,
    from_zero: Annotated[
        bool,
        typer.Option(
            "--from-zero",
            help="Build from position 0 and switch without comparing, whatever the live "
            "read models' tracking record says (the repair for a damaged one).",
        ),
    ] = False,
    json: JsonFlag = False,
) -> None:
    """Build fresh read models from the whole log, compare with the live ones, swap them in."""

    def answer() -> RebuildReport:
        with _progress("rebuilding") as progress:
            task = progress.add_task("rebuilding", total=None)
            return ctx.obj.service().rebuild(  # type: ignore[no-any-return]
                policy,
                check=check,
                from_zero=from_zero,
                on_progress=lambda done, head: progress.update(task, completed=done, total=head),
            )

    report = run(answer)
    if json:
        render.print_json(report.view())
    else:
        for problem in report.view_problems():
            render.err.print(f"[yellow]differs[/] {escape(problem)}")
        for difference in report.differences[:20]:
            render.err.print(f"[yellow]differs[/] {escape(str(difference))}")
        if len(report.differences) > 20:
            render.err.print(f"... and {len(report.differences) - 20} more")
        render.out.print(report.summary())
        _list_quarantined(report.quarantined[:20], len(report.quarantined))
    if check and not report.consistent:
        raise typer.Exit(EXIT_REJECTED)


@projections_app.command("status")
def status_command(
    ctx: typer.Context,
    limit: Annotated[
        int, typer.Option(min=0, help="List at most this many quarantined relationships.")
    ] = 100,
    json: JsonFlag = False,
) -> None:
    """Which generation is live, under which policy, how far behind the log, and which
    relationships are quarantined."""

    found: queries.Status = run(lambda: ctx.obj.service().status(limit))
    if json:
        render.print_json(found.view())
        if found.problem is not None:
            raise typer.Exit(EXIT_STORE)
        return
    render.out.print(
        f"generation {found.generation}, policy {found.policy}: at {found.position} "
        f"of {found.head} ({found.lag} behind); {found.quarantined} quarantined"
    )
    _list_quarantined(found.quarantine, found.quarantined)
    if found.problem is not None:
        render.err.print(f"[red]damaged:[/] {escape(found.problem)}")
        raise typer.Exit(EXIT_STORE)


def _list_quarantined(listed: list[Quarantined], total: int) -> None:
    for held in listed:
        render.out.print(f"[red]quarantined[/] {escape(str(held))}")
    if total > len(listed):
        render.out.print(f"... and {total - len(listed)} more quarantined")
