"""The `relledger` command: wires the store, the consumers and the projections together."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any, BinaryIO, TypeVar

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from consumers.jsonl import IngestReport, ingest_lines
from domain.errors import LedgerError, PolicyError
from domain.fold.records import Phase
from domain.fold.stage import Stage
from domain.ledger import RelationshipLedger, UnknownRelationship
from projections.audit import verify_ledger
from projections.replay import list_relationships, replay_relationship
from projections.views import phase_change_view, standing_view, trust_change_view
from relledger import render
from relledger.policies import load_policy
from relledger.store import StoreUnavailable, open_ledger, store_url_from

EXIT_REJECTED = 1
EXIT_UNKNOWN = 2
EXIT_STORE = 3

app = typer.Typer(
    name="relledger",
    help="An event-sourced relationship ledger: record interactions, ask where each "
    "relationship stands and why, and audit its history.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

T = TypeVar("T")


class Context:
    def __init__(self, db: str | None) -> None:
        self.url = store_url_from(db)

    def ledger(self, *, must_exist: bool = True) -> RelationshipLedger:
        return open_ledger(self.url, must_exist=must_exist)


@app.callback()
def main_options(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Store URL: sqlite:///path/file.db or postgresql://user@host:port/dbname "
            "[env RELLEDGER_DB; default sqlite:///relledger.db]",
            show_default=False,
        ),
    ] = None,
) -> None:
    ctx.obj = Context(db)


def _run(action: Callable[[], T]) -> T:
    """Turn the ledger's own errors into a message and an exit code, never a traceback."""
    try:
        return action()
    except UnknownRelationship as error:
        render.err.print(f"[red]error:[/] {error}")
        raise typer.Exit(EXIT_UNKNOWN) from None
    except StoreUnavailable as error:
        render.err.print(f"[red]error:[/] {error}")
        raise typer.Exit(EXIT_STORE) from None
    except PolicyError as error:
        render.err.print(f"[red]error:[/] {error}")
        raise typer.Exit(EXIT_UNKNOWN) from None
    except LedgerError as error:
        render.err.print(f"[red]error:[/] {error}")
        raise typer.Exit(EXIT_STORE) from None


def _timestamp(value: str | None) -> datetime | None:
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
RelId = Annotated[str, typer.Argument(help="The relationship_id producers use.")]


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


@app.command()
def ingest(
    ctx: typer.Context,
    paths: Annotated[
        list[str], typer.Argument(help="JSONL files of interaction/v1 ('-' = stdin).")
    ],
    batch_size: Annotated[int, typer.Option(min=1, help="Interactions per transaction.")] = 500,
) -> None:
    """Record every valid line; report each rejected one as `line N: field: reason`."""
    ledger = _run(lambda: ctx.obj.ledger(must_exist=False))
    total = IngestReport()
    with _opened(paths) as handles:
        for name, handle, size in handles:
            report = _run(partial(_ingest_one, ledger, handle, name, size, batch_size))
            prefix = f"{name}: " if len(handles) > 1 else ""
            for rejection in report.rejections:
                render.err.print(f"{prefix}{rejection}", markup=False)
            total.add(report)
    render.out.print(
        f"recorded {total.recorded} (late {total.late}), duplicates {total.duplicates}, "
        f"rejected {total.rejected}"
    )
    if total.rejected:
        raise typer.Exit(EXIT_REJECTED)


def _ingest_one(
    ledger: RelationshipLedger, handle: BinaryIO, name: str, size: int | None, batch_size: int
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
        return ingest_lines(
            ledger,
            handle,
            batch_size=batch_size,
            on_progress=lambda done: progress.update(task, completed=done),
        )


@app.command()
def show(ctx: typer.Context, relationship_id: RelId, json: JsonFlag = False) -> None:
    """Where a relationship stands now: phase, stage, connection, trust and fairness."""
    _replay_command(ctx, relationship_id, json)


@app.command()
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
        Path | None, typer.Option(help="Score with this policy file instead of the default.")
    ] = None,
    json: JsonFlag = False,
) -> None:
    """Audit replay: recompute a relationship from its stored events alone."""
    _replay_command(ctx, relationship_id, json, _timestamp(as_of), version, policy)


def _replay_command(
    ctx: typer.Context,
    relationship_id: str,
    as_json: bool,
    as_of: datetime | None = None,
    version: int | None = None,
    policy_file: Path | None = None,
) -> None:
    def answer() -> dict[str, Any]:
        policy = load_policy(policy_file)
        found = replay_relationship(
            ctx.obj.ledger(), relationship_id, policy, as_of=as_of, upto=version
        )
        return standing_view(relationship_id, found.standing)

    view = _run(answer)
    if as_json:
        render.print_json(view)
        return
    limits = [f"as of {as_of.isoformat()}" if as_of else "", f"first {version}" if version else ""]
    title = " ".join([relationship_id, *filter(None, limits)])
    render.out.print(render.standing_table(view, title))


@app.command("trust-history")
def trust_history(ctx: typer.Context, relationship_id: RelId, json: JsonFlag = False) -> None:
    """Every trust change in order, with the event and rule that caused it."""
    found = _run(lambda: replay_relationship(ctx.obj.ledger(), relationship_id, load_policy()))
    rows = [trust_change_view(change) for change in found.scorer.trust_changes]
    columns = ["occurred_at", "event_id", "rule", "before", "after", "delta", "policy"]
    _print_history(f"trust history of {relationship_id}", columns, rows, json)


@app.command("phase-history")
def phase_history(ctx: typer.Context, relationship_id: RelId, json: JsonFlag = False) -> None:
    """Every phase change in order, with the event and rule that caused it."""
    found = _run(lambda: replay_relationship(ctx.obj.ledger(), relationship_id, load_policy()))
    rows = [phase_change_view(change) for change in found.scorer.phase_changes]
    _print_history(
        f"phase history of {relationship_id}",
        ["occurred_at", "event_id", "from", "to", "rule"],
        rows,
        json,
    )


def _print_history(
    title: str, columns: list[str], rows: list[dict[str, Any]], as_json: bool
) -> None:
    if as_json:
        render.print_json(rows)
    else:
        render.out.print(render.history_table(title, columns, rows))


@app.command("list")
def list_command(
    ctx: typer.Context,
    phase: Annotated[Phase | None, typer.Option(help="Only relationships in this phase.")] = None,
    stage: Annotated[Stage | None, typer.Option(help="Only relationships at this stage.")] = None,
    json: JsonFlag = False,
) -> None:
    """Relationships and where they stand, optionally filtered by phase or stage."""
    found = _run(
        lambda: list_relationships(ctx.obj.ledger(), load_policy(), phase=phase, stage=stage)
    )
    views = [standing_view(item.relationship_id, item.standing) for item in found]
    if json:
        render.print_json(views)
        return
    render.out.print(render.relationships_table(views, f"{len(views)} relationships"))


@app.command()
def verify(
    ctx: typer.Context,
    relationship_id: Annotated[
        str | None, typer.Argument(help="Check one relationship (default: all).")
    ] = None,
    json: JsonFlag = False,
) -> None:
    """Recompute every hash chain from the stored records; exit 1 if anything was tampered with."""
    report = _run(lambda: verify_ledger(ctx.obj.ledger(), relationship_id))
    if relationship_id is not None and report.relationships == 0:
        render.err.print(f"[red]error:[/] {UnknownRelationship(relationship_id)}")
        raise typer.Exit(EXIT_UNKNOWN)
    if json:
        render.print_json(
            {
                "intact": report.intact,
                "relationships": report.relationships,
                "records": report.records,
                "breaks": [
                    {
                        "relationship_id": b.relationship_id,
                        "version": b.version,
                        "problem": b.problem,
                    }
                    for b in report.breaks
                ],
                "heads": report.heads,
            }
        )
    else:
        for found in report.breaks:
            render.err.print(f"[red]BROKEN[/] {found}", markup=True)
        verdict = "[green]intact[/]" if report.intact else f"[red]{len(report.breaks)} break(s)[/]"
        render.out.print(
            f"{report.records} records in {report.relationships} relationships: {verdict}"
        )
    if not report.intact:
        raise typer.Exit(EXIT_REJECTED)


@app.command()
def demo(
    ctx: typer.Context,
    relationships: Annotated[int, typer.Option(min=1, help="How many relationships.")] = 60,
    events: Annotated[int, typer.Option(min=2, help="Mean events per relationship.")] = 40,
    seed: Annotated[int, typer.Option(help="Same seed, same data set.")] = 7,
) -> None:
    """Generate a realistic data set, ingest it into the store and summarise it."""
    from relledger.demo import run_demo

    _run(lambda: run_demo(ctx.obj.ledger(must_exist=False), relationships, events, seed))


def main() -> None:
    app()
