"""`relledger policy show` and `policy diff FILE`: the live policy, and what another
would change, before `projections rebuild --policy FILE` applies it.

A thin face over `service.policy_diff`: options, tables and JSON. A diff replays every
relationship twice, so it shows a progress bar on a terminal (stderr).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

from relledger import render
from relledger.app import (
    PANEL_AUDIT,
    CsvFlag,
    HelpfulGroup,
    JsonFlag,
    app,
    output_choice,
    run,
)
from service.ledger_service import LedgerService
from service.policy_diff import PolicyDiff, diff_policies, flat_rules, policy_view

policy_app = typer.Typer(
    cls=HelpfulGroup,
    help="The scoring policy: the live one, and what another would change.",
    no_args_is_help=True,
)
app.add_typer(policy_app, name="policy", rich_help_panel=PANEL_AUDIT)


@policy_app.command("show")
def show_policy(ctx: typer.Context, json: JsonFlag = False, csv: CsvFlag = False) -> None:
    """The live policy (the one the read models are scored under): version and rules."""
    output_choice(json, csv)
    service: LedgerService = run(ctx.obj.service)
    policy = run(lambda: service.policy(None))
    if json:
        render.print_json(policy_view(policy, live=True))
        return
    table = render.Grid(
        ("rule", "value"),
        title=f"policy {policy.version} (live)",
        numeric=frozenset({"value"}),
        ids=frozenset({"rule"}),
    )
    for name, value in flat_rules(policy).items():
        table.add_row(name, str(value))
    render.print_table(table, as_csv=csv, titled=True)  # the title names the version


@policy_app.command("diff")
def diff_policy(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A policy file (TOML), as rebuild --policy takes.")],
    limit: Annotated[
        int, typer.Option(min=0, help="Relationships listed (the largest trust changes).")
    ] = 20,
    json: JsonFlag = False,
) -> None:
    """The live policy against FILE: rules side by side, then the relationships whose
    figures (trust, phase, stage, fairness) would change, each replayed under both."""
    service: LedgerService = run(ctx.obj.service)
    other = run(lambda: service.policy_from_file(file))
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]replaying relationships under both policies"),
        MofNCompleteColumn(),
        console=render.err,
        disable=not render.err.is_terminal,
        transient=True,
    ) as progress:
        task = progress.add_task("diff", total=None)
        found = run(
            lambda: diff_policies(
                service,
                other,
                limit=limit,
                on_progress=lambda done: progress.update(task, completed=done),
            )
        )
    if json:
        render.print_json(found.view())
        return
    _print_diff(found)


def _print_diff(found: PolicyDiff) -> None:
    title = f"rules: {found.live.version} (live) -> {found.other.version} (file)"
    if not found.rules:
        render.out.print(f"{title}: the same rules", markup=False, highlight=False)
    else:
        rules = render.Grid(
            ("rule", found.live.version, found.other.version, "change"),
            title=title,
            ids=frozenset({"rule"}),
        )
        for rule in found.rules:
            rules.add_row(rule["rule"], _cell(rule["live"]), _cell(rule["file"]), rule["change"])
        render.print_table(rules, titled=True)
    changed = render.Grid(
        ("relationship", "figure", found.live.version, found.other.version),
        title=f"figures that would change: {found.changed} of {found.compared} relationships"
        + (f" (listed: the {len(found.listed)} largest trust changes)" if found.listed else ""),
        ids=frozenset({"relationship"}),
    )
    for item in found.listed:
        for n, (figure, (before, after)) in enumerate(item["changes"].items()):
            changed.add_row(
                item["relationship_id"] if n == 0 else "", figure, _cell(before), _cell(after)
            )
    render.print_table(changed, titled=True)
    if found.unfoldable:
        render.err.print(
            f"{found.unfoldable} relationship(s) could not be replayed (their stored events "
            "fail to fold): see relledger projections status"
        )


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)
