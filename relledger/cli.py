"""The `relledger` commands that record and replay: ingest, replay, demo, migrate.

Commands answering from the read models are in `cli_read`, those proving the
history intact in `cli_audit`; all register on the one Typer `app` (see
`relledger.app`).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
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
    NotJsonLines,
    OversizedLine,
    bounded_lines,
)
from domain.contract import DEFAULT_LIMITS, IntakeLimits, Interaction
from domain.ledger import Outcome
from projections.projector import CatchUp
from relledger import (
    cli_audit,
    cli_export,
    cli_kafka,
    cli_keys,
    cli_policy,
    cli_read,
    cli_serve,
    render,
)
from relledger.app import (
    EXIT_REJECTED,
    EXIT_UNKNOWN,
    PANEL_AUDIT,
    PANEL_RECORD,
    CsvFlag,
    FutureSkewOption,
    JsonFlag,
    LineBytesOption,
    RelId,
    T,
    app,
    intake_limits,
    output_choice,
    run,
    run_command,
    timestamp,
)
from service.demo_store import DEMO_URL
from service.ledger_service import LedgerService
from service.schema import migrate
from service.store import ENV_VAR, store_url_from, wait_for_store


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


EXIT_INTERRUPTED = 130
"""128 + SIGINT, as a shell reports a command stopped by Ctrl-C."""


@contextmanager
def _stop_on_interrupt() -> Iterator[threading.Event]:
    """The first Ctrl-C asks the ingest to stop after the batch in hand (what was
    recorded stays whole batches); a second one aborts that batch too (its transaction
    rolls back)."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def interrupted(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        render.err.print(
            "interrupted: stopping after the batch in hand (Ctrl-C again to abandon it)"
        )

    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


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
    json: JsonFlag = False,
) -> None:
    """Record every valid line; report each rejected one as `line N: field: reason`.

    Ctrl-C stops at the next batch boundary: what was recorded stays recorded (and is
    projected), and running the same command again resumes (it comes back as
    duplicates). Exit 130 then."""
    limits = intake_limits(max_future_skew, max_line_bytes)

    def patiently(what: str, action: Callable[[], T]) -> T:
        say = partial(render.err.print, markup=False, highlight=False)
        return run(lambda: wait_for_store(action, what=what, patience_s=store_patience, say=say))

    service: LedgerService = patiently("open", ctx.obj.service)
    total = IngestReport()
    refused: list[str] = []
    with _opened(paths) as handles, _stop_on_interrupt() as stop:
        for name, handle, size in handles:
            prefix = f"{name}: " if len(handles) > 1 else ""

            def tell(rejection: LineRejection, prefix: str = prefix) -> None:
                render.err.print(f"{prefix}{rejection}", markup=False, highlight=False)

            def record(items: Sequence[Interaction]) -> list[Outcome]:
                return patiently("record", lambda: service.record(items))

            lines = bounded_lines(handle, limits.max_message_bytes)
            one = partial(
                _ingest_one, service, lines, name, size, batch_size, limits, record, tell, stop
            )
            report = run(one)
            if isinstance(report, NotJsonLines):  # the whole file, said once; nothing recorded
                render.err.print(f"[red]error:[/] {escape(prefix + str(report))}")
                refused.append(name)
                continue
            total.add(report)
            if stop.is_set():
                total.interrupted = True
                break
    _ingested(service, patiently, total, refused, json)


def _ingested(
    service: LedgerService,
    patiently: Callable[[str, Callable[[], CatchUp]], CatchUp],
    total: IngestReport,
    refused: list[str],
    json: bool,
) -> None:
    """Bring the read models up to date with what was recorded, say what happened, and
    exit with its code."""
    try:
        projected = patiently("project", lambda: cli_read.project_now(service))
    except typer.Exit:  # what was recorded stays recorded: say so before the error's exit
        render.out.print(f"{total.summary()}; the read models were not brought up to date")
        raise
    if json:
        render.print_json(
            {**total.view(), "refused_files": refused, "position": projected.position}
        )
    else:
        render.out.print(f"{total.summary()}; read models at position {projected.position}")
    if total.interrupted:
        render.err.print(
            "interrupted: stopped at a batch boundary; what is counted above is recorded "
            "and projected. Run the same command again to resume: the interactions "
            "already recorded come back as duplicates (recognised by source and event_id)"
        )
        raise typer.Exit(EXIT_INTERRUPTED)
    if total.rejected or refused:
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
    stop: threading.Event,
) -> IngestReport | NotJsonLines:
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
        try:
            return service.ingest(
                lines,
                batch_size=batch_size,
                limits=limits,
                record=record,
                on_rejection=tell,
                on_progress=lambda done: progress.update(task, completed=done),
                stop=stop,
            )
        except NotJsonLines as refused:
            return refused


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
    csv: CsvFlag = False,
) -> None:
    """Audit replay: recompute a relationship from its stored events alone, once they verify."""
    output_choice(json, csv)
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
    render.print_table(render.standing_table(view, title), as_csv=csv)
    source = "live" if policy is None else f"from {policy}"
    (render.err if csv else render.out).print(
        f"policy: {view['policy']} ({source})", markup=False, highlight=False
    )


@app.command(rich_help_panel=PANEL_RECORD)
def demo(
    ctx: typer.Context,
    relationships: Annotated[int, typer.Option(min=1, help="How many relationships.")] = 60,
    events: Annotated[int, typer.Option(min=2, help="Mean events per relationship.")] = 40,
    seed: Annotated[int, typer.Option(help="Same seed, same data set.")] = 7,
    json: JsonFlag = False,
) -> None:
    """Generate a realistic data set, ingest it and summarise it, in a store of its own.

    With no --db (and no RELLEDGER_DB) the store is ./relledger-demo.db. A store that
    holds anything but a demo's data is refused (exit 2); one that holds a demo's
    already is shown as it is, not written again."""
    from relledger.demo import run_demo

    named = _store_named(ctx)
    url = ctx.obj.url if named else DEMO_URL
    run(lambda: run_demo(url, relationships, events, seed, json=json, store_named=named))


def _store_named(ctx: typer.Context) -> bool:
    """Whether the user named a store (--db, or RELLEDGER_DB), rather than leaving the
    default: the demo then writes there, refusing it unless it is new or a demo's."""
    given = ctx.find_root().params.get("db") is not None or bool(os.environ.get(ENV_VAR))
    return given or ctx.obj.url != store_url_from(None)


@app.command("migrate", rich_help_panel=PANEL_RECORD)
def migrate_command(ctx: typer.Context, json: JsonFlag = False) -> None:
    """Create the store's tables, or bring an older store up to date. Safe to run again.

    Every other command refuses a store this has not prepared, and creates nothing."""
    done = run(lambda: migrate(ctx.obj.url))
    if json:
        render.print_json(done.view())
        return
    render.out.print(done.summary())


def main() -> None:
    run_command()


__all__ = [
    "app",
    "cli_audit",
    "cli_export",
    "cli_kafka",
    "cli_keys",
    "cli_policy",
    "cli_read",
    "cli_serve",
    "main",
]
