"""Commands answered from the read models, and the commands that keep them current.

`show`, `list`, `trust-history`, `phase-history`, `at-risk` and `stats` read the
live read models (and say so when those lag behind the log, or cannot go on from their
tracking record); `project` catches them up or follows the log; `projections rebuild`
rebuilds them from zero (`--from-zero` without comparing, the repair for a damaged
tracking record).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from domain.fold.fairness import FairnessStatus
from domain.fold.records import Connection, Phase
from domain.fold.stage import Stage
from projections import queries
from projections.projector import CatchUp
from projections.quarantine import Quarantined
from projections.rebuild import RebuildReport
from relledger import render
from relledger.app import (
    EXIT_REJECTED,
    EXIT_STORE,
    PANEL_QUERY,
    PANEL_READ_MODELS,
    JsonFlag,
    RelId,
    app,
    run,
    timestamp,
)
from service.ledger_service import LedgerService

T = TypeVar("T")

projections_app = typer.Typer(
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


def _ask(ctx: typer.Context, question: Callable[[LedgerService], T]) -> T:
    """Answer `question` through the service, noting on stderr if the read models lag
    the log or hold quarantined relationships."""

    def answer() -> T:
        service: LedgerService = ctx.obj.service()
        for note in service.notes().lines():
            render.err.print(f"[yellow]note:[/] {escape(note)}")
        return question(service)

    return run(answer)


@app.command(rich_help_panel=PANEL_QUERY)
def show(ctx: typer.Context, relationship_id: RelId, json: JsonFlag = False) -> None:
    """Where a relationship stands now: phase, stage, connection, trust and fairness."""

    found = _ask(ctx, lambda service: service.standing(relationship_id))
    if json:
        render.print_json(found)
        return
    if "stage" in found:  # no figures if it was quarantined at its first event
        render.out.print(render.standing_table(found))
    held = found.get("quarantined")
    if held is not None:
        render.out.print(_quarantine_text(held))


def _quarantine_text(held: dict[str, Any]) -> str:
    return (
        f"[red]quarantined[/] at position {held['position']} (event {escape(held['event_id'])}, "
        f"policy {escape(held['policy'])}): {escape(held['reason'])}; the figures stop before "
        "that event. Rebuild the read models once the cause is fixed."
    )


def _history(
    ctx: typer.Context,
    relationship_id: str,
    ask: Callable[[LedgerService, str], list[dict[str, Any]]],
) -> list[dict[str, Any]]:
    def answer(service: LedgerService) -> list[dict[str, Any]]:
        held = service.standing(relationship_id).get("quarantined")
        if held is not None:
            render.err.print(_quarantine_text(held))
        return ask(service, relationship_id)

    return _ask(ctx, answer)


def _print_history(
    title: str, columns: list[str], rows: list[dict[str, Any]], as_json: bool
) -> None:
    if as_json:
        render.print_json(rows)
    else:
        render.out.print(render.history_table(title, columns, rows))


@app.command("trust-history", rich_help_panel=PANEL_QUERY)
def trust_history(ctx: typer.Context, relationship_id: RelId, json: JsonFlag = False) -> None:
    """Every trust change in order, with the event and rule that caused it."""
    rows = _history(ctx, relationship_id, LedgerService.trust_history)
    columns = ["occurred_at", "event_id", "rule", "before", "after", "delta", "policy"]
    _print_history(f"trust history of {relationship_id}", columns, rows, json)


@app.command("phase-history", rich_help_panel=PANEL_QUERY)
def phase_history(ctx: typer.Context, relationship_id: RelId, json: JsonFlag = False) -> None:
    """Every phase change in order, with the event and rule that caused it."""
    rows = _history(ctx, relationship_id, LedgerService.phase_history)
    columns = ["occurred_at", "event_id", "from", "to", "rule"]
    _print_history(f"phase history of {relationship_id}", columns, rows, json)


@app.command("list", rich_help_panel=PANEL_QUERY)
def list_command(
    ctx: typer.Context,
    phase: Annotated[Phase | None, typer.Option(help="Only relationships in this phase.")] = None,
    stage: Annotated[Stage | None, typer.Option(help="Only relationships at this stage.")] = None,
    connection: Annotated[
        Connection | None, typer.Option(help="Only relationships with this connection.")
    ] = None,
    fairness: Annotated[
        FairnessStatus | None, typer.Option(help="Only relationships with this fairness status.")
    ] = None,
    party: Annotated[
        str | None, typer.Option(help="Only relationships where this is the supplier or customer.")
    ] = None,
    sort: Annotated[queries.SortKey, typer.Option(help="Sort by this figure.")] = (
        queries.SortKey.RELATIONSHIP
    ),
    desc: Annotated[bool, typer.Option("--desc", help="Largest first.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Page size.")] = 50,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many first.")] = 0,
    json: JsonFlag = False,
) -> None:
    """Relationships and where they stand: filter, sort and page through them."""
    filters = queries.Filters(phase, stage, connection, fairness, party)

    found = _ask(
        ctx,
        lambda service: service.relationships(
            filters, sort=sort, descending=desc, limit=limit, offset=offset
        ),
    )
    if json:
        render.print_json(found.items)
        return
    shown = f"{offset + 1}-{offset + len(found.items)}" if found.items else "none"
    title = f"{found.total} relationships (showing {shown})"
    render.out.print(render.relationships_table(found.items, title))


@app.command("at-risk", rich_help_panel=PANEL_QUERY)
def at_risk(
    ctx: typer.Context,
    since: Annotated[str, typer.Option(help="Start of the period (ISO 8601 with a zone).")],
    until: Annotated[str | None, typer.Option(help="End of the period (default: no end).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many relationships.")] = 10,
    json: JsonFlag = False,
) -> None:
    """Relationships whose trust fell most in a period, with the events that caused it."""
    start, end = timestamp(since), timestamp(until)

    found = _ask(ctx, lambda service: service.at_risk(start, end, limit))
    if json:
        render.print_json(found)
        return
    table = Table(title=f"largest trust falls since {since}", title_justify="left")
    for column in ("relationship", "net change", "trust now", "phase", "main causes"):
        table.add_column(column)
    for item in found:
        causes = ", ".join(
            f"{c['event_id']} {c['rule']} {c['delta']:+.3f}" for c in item["causes"][:3]
        )
        table.add_row(
            item["relationship_id"],
            f"[red]{item['net_change']:+.4f}[/]",
            f"{item['trust']:.4f}",
            render.phase_text(item["phase"]),
            causes,
        )
    render.out.print(table)


@app.command(rich_help_panel=PANEL_QUERY)
def stats(
    ctx: typer.Context,
    outliers: Annotated[int, typer.Option(min=0, help="How many fairness outliers.")] = 5,
    json: JsonFlag = False,
) -> None:
    """Counts by phase, stage, connection and fairness, and the most one-sided exchanges."""

    found = _ask(ctx, lambda service: service.stats(outliers))
    if json:
        render.print_json(found)
        return
    for name, counts in found["distribution"].items():
        render.out.print(render.counts_table(name, counts))
    if found["fairness_outliers"]:
        render.out.print(
            render.relationships_table(found["fairness_outliers"], "fairness outliers")
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
) -> None:
    """Catch the read models up with the log (or keep following it)."""
    stop = _stop_on_signals()
    service: LedgerService = run(ctx.obj.service)
    report = run(lambda: project_now(service, stop))
    quarantined = f"; {len(report.quarantined)} quarantined" if report.quarantined else ""
    render.out.print(
        f"read models at position {report.position} ({report.events} events applied{quarantined})"
    )
    if not follow or stop.is_set():
        return
    render.err.print("following the log; Ctrl-C to stop")

    def tell(step: CatchUp) -> None:
        if step.events:
            render.out.print(f"applied {step.events} events, at position {step.position}")
        _tell_quarantined(step)

    run(lambda: service.follow(stop, interval, on_caught_up=tell))


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
