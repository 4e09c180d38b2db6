"""Commands answered from the read models: `show`, `list`, `trust-history`,
`phase-history`, `at-risk` and `stats`.

They read the live read models (and say so on stderr when those lag behind the log,
or cannot go on from their tracking record). Each prints a table (`render.Grid`: a
table on a terminal, tab-separated text elsewhere), `--csv`, or `--json` in the shape
the HTTP API answers too. The commands that keep the read models current are in
`cli_projections`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.text import Text

from domain.fold.fairness import FairnessStatus
from domain.fold.records import Connection, Phase
from domain.fold.stage import Stage
from projections import queries
from relledger import render
from relledger.app import (
    PANEL_QUERY,
    CsvFlag,
    JsonFlag,
    RelId,
    app,
    output_choice,
    run,
    timestamp,
    usage_error,
)
from service.ledger_service import LedgerService

T = TypeVar("T")


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
def show(
    ctx: typer.Context, relationship_id: RelId, json: JsonFlag = False, csv: CsvFlag = False
) -> None:
    """Where a relationship stands now: parties, phase, stage, connection, trust, fairness,
    first and last event."""
    output_choice(json, csv)
    found = _ask(ctx, lambda service: service.standing(relationship_id))
    if json:
        render.print_json(found)
        return
    if "stage" in found:  # no figures if it was quarantined at its first event
        render.print_table(render.standing_table(found), as_csv=csv)
    held = found.get("quarantined")
    if held is not None:
        (render.err if csv else render.out).print(quarantine_text(held))


def quarantine_text(held: dict[str, Any]) -> str:
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
            render.err.print(quarantine_text(held))
        return ask(service, relationship_id)

    return _ask(ctx, answer)


def _print_history(
    title: str, columns: list[str], rows: list[dict[str, Any]], as_json: bool, as_csv: bool
) -> None:
    if as_json:
        render.print_json(rows)
    else:
        render.print_table(render.history_table(title, columns, rows), as_csv=as_csv)


@app.command("trust-history", rich_help_panel=PANEL_QUERY)
def trust_history(
    ctx: typer.Context, relationship_id: RelId, json: JsonFlag = False, csv: CsvFlag = False
) -> None:
    """Every trust change in order, with the event and rule that caused it."""
    output_choice(json, csv)
    rows = _history(ctx, relationship_id, LedgerService.trust_history)
    columns = ["occurred_at", "event_id", "rule", "before", "after", "delta", "policy"]
    _print_history(f"trust history of {relationship_id}", columns, rows, json, csv)


@app.command("phase-history", rich_help_panel=PANEL_QUERY)
def phase_history(
    ctx: typer.Context, relationship_id: RelId, json: JsonFlag = False, csv: CsvFlag = False
) -> None:
    """Every phase change in order, with the event and rule that caused it."""
    output_choice(json, csv)
    rows = _history(ctx, relationship_id, LedgerService.phase_history)
    columns = ["occurred_at", "event_id", "from", "to", "rule"]
    _print_history(f"phase history of {relationship_id}", columns, rows, json, csv)


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
    csv: CsvFlag = False,
) -> None:
    """Relationships and where they stand: filter, sort and page through them."""
    output_choice(json, csv)
    filters = queries.Filters(phase, stage, connection, fairness, party)

    found = _ask(
        ctx,
        lambda service: service.relationships(
            filters, sort=sort, descending=desc, limit=limit, offset=offset
        ),
    )
    if json:
        render.print_json(found.view())
        return
    shown = f"{offset + 1}-{offset + len(found.items)}" if found.items else "none"
    title = f"{found.total} relationships (showing {shown})"
    render.print_table(render.relationships_table(found.items, title), as_csv=csv)
    if not render.out.is_terminal and offset + len(found.items) < found.total:
        render.err.print(  # the table's title is not printed off a terminal: say what is left
            f"note: showing {shown} of {found.total}; --offset {offset + len(found.items)} "
            "for the next page",
            markup=False,
            highlight=False,
        )


@app.command("at-risk", rich_help_panel=PANEL_QUERY)
def at_risk(
    ctx: typer.Context,
    since: Annotated[str, typer.Option(help="Start of the period (ISO 8601 with a zone).")],
    until: Annotated[str | None, typer.Option(help="End of the period (default: no end).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many relationships.")] = 10,
    json: JsonFlag = False,
    csv: CsvFlag = False,
) -> None:
    """Relationships whose trust fell most in a period, with the events that caused it."""
    output_choice(json, csv)
    start, end = timestamp(since), timestamp(until)
    if start is not None and end is not None and start > end:
        usage_error(f"--since {since} is after --until {until}: the period is empty")

    found = _ask(ctx, lambda service: service.at_risk(start, end, limit))
    if json:
        render.print_json(found)
        return
    period = f"since {since}" + ("" if until is None else f" until {until}")
    grid = render.Grid(
        ("relationship", "net change", "trust now", "phase", "main causes"),
        title=f"largest trust falls {period}",
        numeric=frozenset({"net change", "trust now"}),
        ids=frozenset({"relationship"}),
    )
    for item in found:
        causes = ", ".join(
            f"{c['event_id']} {c['rule']} {c['delta']:+.3f}" for c in item["causes"][:3]
        )
        trust = item["trust"]
        grid.add_row(
            item["relationship_id"],
            Text(f"{item['net_change']:+.4f}", style="red"),
            "-" if trust is None else f"{trust:.4f}",
            render.phase_text(item["phase"]),
            causes,
        )
    render.print_table(grid, as_csv=csv)


@app.command(rich_help_panel=PANEL_QUERY)
def stats(
    ctx: typer.Context,
    outliers: Annotated[int, typer.Option(min=0, help="How many fairness outliers.")] = 5,
    json: JsonFlag = False,
    csv: Annotated[
        bool,
        typer.Option(
            "--csv",
            help="Print the counts as CSV (RFC 4180): dimension, value, relationships "
            "(the outliers are in the table and --json).",
        ),
    ] = False,
) -> None:
    """Counts by phase, stage, connection and fairness (every value, in the domain's order),
    and the most one-sided exchanges."""
    output_choice(json, csv)
    found = _ask(ctx, lambda service: service.stats(outliers))
    if json:
        render.print_json(found)
        return
    render.print_table(render.distribution_table(found["distribution"]), as_csv=csv)
    if found["fairness_outliers"] and not csv:
        render.out.print()
        render.out.print(
            render.relationships_table(found["fairness_outliers"], "fairness outliers")
        )


# The read models' own commands register after these (so `relledger --help` lists them
# in this order); `project_now` is what `ingest` and `demo` call through here.
from relledger.cli_projections import project_now  # noqa: E402

__all__ = ["project_now"]
