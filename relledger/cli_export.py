"""`relledger export`: the ledger's interactions as JSONL (the backup, and the way to
move between backends), or its read models as CSV.

A thin face over `service.export` and `service.export_read_models`: options, the
progress bar (stderr, on a terminal) and the lines for a person. The JSONL goes to
`--out` or stdout; with it on stdout, everything meant for a person goes to stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from relledger import render
from relledger.app import PANEL_AUDIT, JsonFlag, app, run
from service.audit_files import output_file
from service.export import ExportReport, export_interactions
from service.export_read_models import export_read_models
from service.ledger_service import LedgerService


@app.command("export", rich_help_panel=PANEL_AUDIT)
def export_command(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the JSONL to this file (default: stdout)."),
    ] = None,
    read_models: Annotated[
        Path | None,
        typer.Option(
            "--read-models",
            help="Instead, write the read models as CSV files into this folder.",
            file_okay=False,
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace files that exist.")] = False,
    json: JsonFlag = False,
) -> None:
    """Every stored interaction in log order, as JSONL that `relledger ingest` restores.

    --json (with --out) prints a summary: interactions, path, the restore command.

    Ingested into an empty store (SQLite or PostgreSQL), the file reproduces every hash
    chain and figure; see docs/export.md. --read-models writes relationship_summary.csv,
    trust_changes.csv and phase_changes.csv instead."""
    if read_models is not None and out is not None:
        raise typer.BadParameter("give --out or --read-models, not both")
    if json and out is None and read_models is None:
        raise typer.BadParameter("--json needs --out: without it, stdout carries the export")
    service: LedgerService = run(ctx.obj.service)
    if read_models is not None:
        written = run(lambda: export_read_models(service.view, read_models, replace=force))
        if json:
            render.print_json({"folder": str(read_models), "rows": written})
            return
        for name, rows in written.items():
            render.out.print(f"{read_models / name}: {rows} rows", markup=False, highlight=False)
        return
    report = run(lambda: _export(service, out, force))
    if json:
        render.print_json(report.view())
        return
    where = "stdout" if out is None else str(out)
    render.err.print(
        f"exported {report.interactions} interactions to {where}; restore into an empty "
        f"store with: {report.restore_hint(str(out or 'FILE'))}",
        markup=False,
        highlight=False,
    )


def _export(service: LedgerService, out: Path | None, force: bool) -> ExportReport:
    if out is None:
        return _stream(service, sys.stdout.buffer)
    with output_file(out, replace=force) as handle:
        report = _stream(service, handle)
    report.path = str(out)
    return report


def _stream(service: LedgerService, handle: IO[bytes]) -> ExportReport:
    with Progress(
        TextColumn("[bold]exporting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=render.err,
        disable=not render.err.is_terminal,
        transient=True,
    ) as progress:
        task = progress.add_task("exporting", total=None)
        return export_interactions(
            service.ledger,
            handle,
            on_progress=lambda done, head: progress.update(task, completed=done, total=head),
        )
