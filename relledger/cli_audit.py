"""The `relledger` commands that prove the history intact: verify (and, with it, the
signed checkpoints and proofs an auditor keeps outside the store).

They register on the one Typer `app` (see `relledger.app`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from projections.audit import VerifyReport
from relledger import render
from relledger.app import EXIT_REJECTED, PANEL_AUDIT, JsonFlag, app, run


@app.command(rich_help_panel=PANEL_AUDIT)
def verify(
    ctx: typer.Context,
    relationship_id: Annotated[
        str | None, typer.Argument(help="Check one relationship (default: all).")
    ] = None,
    json: JsonFlag = False,
) -> None:
    """Recompute every hash chain from the stored records; exit 1 if anything was tampered with."""
    report: VerifyReport = run(lambda: ctx.obj.service().verify(relationship_id))
    if json:
        render.print_json(report.view())
    else:
        for found in report.breaks:
            render.err.print(f"[red]BROKEN[/] {found}", markup=True)
        verdict = "[green]intact[/]" if report.intact else f"[red]{len(report.breaks)} break(s)[/]"
        render.out.print(
            f"{report.records} records in {report.relationships} relationships: {verdict}"
        )
    if not report.intact:
        raise typer.Exit(EXIT_REJECTED)
