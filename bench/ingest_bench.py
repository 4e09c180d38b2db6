"""Ingest, fold and replay benchmark for relledger, against the bare `eventsourcing` rate.

    python bench/ingest_bench.py [--events N] [--relationships M]
                                 [--backends sqlite,postgres] [--replay-events 10000]
                                 [--json out.json] [--profile EVENTS]

Per backend, in one run and on the same persistence settings:

* write path: `consumers.jsonl.ingest_lines` over a JSONL file of N simulated
  interactions across M relationships (validate, dedupe, hash chain, save in
  batches of 500, one transaction each), timed end to end from the file;
* fold: `projections.replay.replay_all` over everything just stored (reads, decodes
  and folds; the fold is not in the ingest path today), with a breakdown into
  read+decode and the in-memory fold alone;
* full path incl. fold: 1 / (1/ingest_rate + 1/fold_rate);
* bare library: an `eventsourcing` Application saving a trivial Aggregate, (a) 500 new
  aggregates per save, (b) one aggregate with 500 events per save; the faster one
  is the denominator of the ratios (the stricter comparison);
* replay: one relationship of 10,000 events, `replay_relationship` on a freshly
  opened ledger, median of 5 runs.

Targets (the issue): full path >= 0.6 x bare rate; replay of 10,000 events < 0.3 s.
This is a benchmark, not a timed test: it reports, it does not assert.
`--profile EVENTS` instead runs cProfile over a SQLite ingest of that many events.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import platform
import pstats
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson
import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from rich.console import Console
from rich.table import Table

from consumers.jsonl import ingest_lines
from domain.fold.scorer import Scorer
from domain.ledger import RelationshipLedger
from domain.stored import StoredInteraction
from projections.replay import replay_all, replay_relationship
from relledger.simulate import PERSONAS, SIMULATED_HISTORY, relationship_stream, simulate
from service.policies import load_policy
from service.store import open_ledger, parse_store_url

BATCH = 500
REPLAY_RUNS = 5
BIG_ID = "bench/big"
DEFAULT_PG = os.environ.get("RELLEDGER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
TARGET_RATIO = 0.6
TARGET_REPLAY_S = 0.3

console = Console(width=None if sys.stdout.isatty() else 120)


# --- the bare library baseline ------------------------------------------------------


class Trivial(Aggregate):
    """The smallest aggregate the library allows: no state, one argument-less event."""

    @event("Ticked")
    def tick(self) -> None:
        pass


class BareNew(Application[uuid.UUID]):
    """Shape (a): 500 new aggregates per save."""


class BareOne(Application[uuid.UUID]):
    """Shape (b): one aggregate, 500 new events per save."""


def bare_new_aggregates(env: dict[str, str], events: int) -> float:
    app = BareNew(env=env)
    try:
        start = time.perf_counter()
        for _ in range(events // BATCH):
            app.save(*[Trivial() for _ in range(BATCH)])
        return time.perf_counter() - start
    finally:
        app.close()


def bare_one_aggregate(env: dict[str, str], events: int) -> float:
    app = BareOne(env=env)
    try:
        start = time.perf_counter()
        aggregate = Trivial()  # its creation event is the first of the first batch
        for batch in range(events // BATCH):
            for _ in range(BATCH - 1 if batch == 0 else BATCH):
                aggregate.tick()
            app.save(aggregate)
        return time.perf_counter() - start
    finally:
        app.close()


# --- stores ---------------------------------------------------------------------------


class Stores:
    """Fresh, empty store URLs on one backend; everything made here is removed on close."""

    def __init__(self, backend: str, workdir: Path, pg_url: str) -> None:
        self.backend = backend
        self.workdir = workdir
        self.pg_url = pg_url
        self.schemas: list[str] = []

    def fresh(self, label: str) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.workdir}/{label}-{uuid.uuid4().hex[:8]}.db"
        schema = f"relledger_bench_{label}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.pg_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        self.schemas.append(schema)
        return f"{self.pg_url}?schema={schema}"

    def close(self) -> None:
        if not self.schemas:
            return
        with psycopg.connect(self.pg_url, autocommit=True, connect_timeout=5) as conn:
            for schema in self.schemas:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        self.schemas.clear()


def postgres_problem(pg_url: str) -> str | None:
    try:
        psycopg.connect(pg_url, connect_timeout=3).close()
    except psycopg.Error as error:
        return " ".join(str(error).split()) or type(error).__name__
    return None


# --- data -----------------------------------------------------------------------------


def write_jsonl(path: Path, events: Iterable[dict[str, Any]]) -> int:
    count = 0
    with path.open("wb") as handle:
        for item in events:
            handle.write(orjson.dumps(item))
            handle.write(b"\n")
            count += 1
    return count


@dataclass
class Data:
    main: Path
    main_lines: int
    big: Path
    big_lines: int
    generate_s: float


def generate(workdir: Path, events: int, relationships: int, replay_events: int) -> Data:
    start = time.perf_counter()
    per_relationship = max(2, round(events / relationships))
    main = workdir / "interactions.jsonl"
    main_lines = write_jsonl(
        main, simulate(relationships, per_relationship, seed=7, prefix="bench")
    )
    big = workdir / "big.jsonl"
    stream = relationship_stream(random.Random(1), BIG_ID, PERSONAS[0], replay_events)
    big_lines = write_jsonl(big, stream)
    return Data(main, main_lines, big, big_lines, time.perf_counter() - start)


# --- measurements ---------------------------------------------------------------------


@dataclass
class Ingest:
    lines: int
    recorded: int
    duplicates: int
    late: int
    rejected: int
    seconds: float

    @property
    def rate(self) -> float:
        """Recorded (stored) events per second: what the bare rate is compared with."""
        return self.recorded / self.seconds

    @property
    def line_rate(self) -> float:
        return self.lines / self.seconds


def ingest_file(ledger: RelationshipLedger, path: Path, lines: int) -> Ingest:
    start = time.perf_counter()
    with path.open("rb") as handle:
        report = ingest_lines(ledger, handle, batch_size=BATCH, limits=SIMULATED_HISTORY)
    seconds = time.perf_counter() - start
    return Ingest(lines, report.recorded, report.duplicates, report.late, report.rejected, seconds)


@dataclass
class Fold:
    events: int
    relationships: int
    seconds: float  # replay_all: read + decode + fold
    read_s: float  # scan() to StoredInteraction, and Fact.from_record
    fold_s: float  # Scorer.apply over in-memory facts only

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def fold_only_rate(self) -> float:
        return self.events / self.fold_s


def measure_fold(url: str) -> Fold:
    policy = load_policy()
    ledger = open_ledger(url, create=True)
    try:
        start = time.perf_counter()
        replays = list(replay_all(ledger, policy))
        seconds = time.perf_counter() - start
        events = sum(found.scorer.events for found in replays)

        start = time.perf_counter()
        facts = [
            (stored.relationship_id, stored.fact())
            for stored in ledger.scan()
            if isinstance(stored, StoredInteraction)
        ]
        read_s = time.perf_counter() - start
        start = time.perf_counter()
        scorers: dict[str, Scorer] = {}
        for relationship_id, fact in facts:
            scorer = scorers.get(relationship_id)
            if scorer is None:
                scorer = scorers[relationship_id] = Scorer(policy)
            scorer.apply(fact)
        fold_s = time.perf_counter() - start
    finally:
        ledger.close()
    return Fold(events, len(replays), seconds, read_s, fold_s)


@dataclass
class ReplayOne:
    events: int
    runs: list[float]
    read_runs: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def read_median(self) -> float:
        return statistics.median(self.read_runs)


def measure_replay(url: str) -> ReplayOne:
    policy = load_policy()
    runs: list[float] = []
    read_runs: list[float] = []
    events = 0
    for _ in range(REPLAY_RUNS):
        ledger = open_ledger(
            url, create=True
        )  # fresh: no aggregate cache, no warm connection state
        try:
            start = time.perf_counter()
            found = replay_relationship(ledger, BIG_ID, policy)
            runs.append(time.perf_counter() - start)
            events = found.scorer.events
        finally:
            ledger.close()
        ledger = open_ledger(url, create=True)
        try:
            start = time.perf_counter()
            ledger.history(BIG_ID)
            read_runs.append(time.perf_counter() - start)
        finally:
            ledger.close()
    return ReplayOne(events, runs, read_runs)


@dataclass
class Backend:
    name: str
    ingest: Ingest
    fold: Fold
    big_ingest: Ingest
    replay: ReplayOne
    bare_events: int
    bare_new_s: float
    bare_one_s: float
    notes: list[str] = field(default_factory=list)

    @property
    def combined_rate(self) -> float:
        return 1 / (1 / self.ingest.rate + 1 / self.fold.rate)

    @property
    def bare_new_rate(self) -> float:
        return self.bare_events / self.bare_new_s

    @property
    def bare_one_rate(self) -> float:
        return self.bare_events / self.bare_one_s

    @property
    def bare_best(self) -> float:
        return max(self.bare_new_rate, self.bare_one_rate)

    @property
    def write_ratio(self) -> float:
        return self.ingest.rate / self.bare_best

    @property
    def combined_ratio(self) -> float:
        return self.combined_rate / self.bare_best

    def figures(self) -> dict[str, Any]:
        return {
            "ingest": {
                **asdict(self.ingest),
                "events_per_s": self.ingest.rate,
                "lines_per_s": self.ingest.line_rate,
            },
            "fold": {
                **asdict(self.fold),
                "events_per_s": self.fold.rate,
                "fold_only_events_per_s": self.fold.fold_only_rate,
            },
            "full_path_incl_fold_events_per_s": self.combined_rate,
            "bare": {
                "events": self.bare_events,
                "new_aggregates_500_per_save_events_per_s": self.bare_new_rate,
                "one_aggregate_500_events_per_save_events_per_s": self.bare_one_rate,
                "best_events_per_s": self.bare_best,
            },
            "ratio_write_path_to_bare": self.write_ratio,
            "ratio_full_path_incl_fold_to_bare": self.combined_ratio,
            "big_relationship_ingest": {
                **asdict(self.big_ingest),
                "events_per_s": self.big_ingest.rate,
            },
            "replay_one_relationship": {
                "events": self.replay.events,
                "runs_s": self.replay.runs,
                "median_s": self.replay.median,
                "read_only_runs_s": self.replay.read_runs,
                "read_only_median_s": self.replay.read_median,
            },
            "targets": {
                "full_path_ratio_min": TARGET_RATIO,
                "full_path_ratio_met": self.combined_ratio >= TARGET_RATIO,
                "replay_max_s": TARGET_REPLAY_S,
                "replay_met": self.replay.median < TARGET_REPLAY_S,
            },
        }


def step(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}")


def run_backend(name: str, stores: Stores, data: Data, bare_events: int) -> Backend:
    url = stores.fresh("ledger")
    step(f"{name}: ingest {data.main_lines:,} lines")
    ledger = open_ledger(url, create=True)
    try:
        ingest = ingest_file(ledger, data.main, data.main_lines)
    finally:
        ledger.close()
    step(f"{name}: replay_all (fold) over {ingest.recorded:,} events")
    fold = measure_fold(url)
    step(f"{name}: ingest one relationship of {data.big_lines:,} events")
    ledger = open_ledger(url, create=True)
    try:
        big_ingest = ingest_file(ledger, data.big, data.big_lines)
    finally:
        ledger.close()
    step(f"{name}: replay_relationship x{REPLAY_RUNS}")
    replay = measure_replay(url)
    step(f"{name}: bare eventsourcing, {bare_events:,} events per shape")
    bare_new_s = bare_new_aggregates(parse_store_url(stores.fresh("barenew")).settings, bare_events)
    bare_one_s = bare_one_aggregate(parse_store_url(stores.fresh("bareone")).settings, bare_events)
    return Backend(name, ingest, fold, big_ingest, replay, bare_events, bare_new_s, bare_one_s)


# --- machine and report ---------------------------------------------------------------


def _command(*args: str) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(args, capture_output=True, text=True, timeout=5).stdout.strip()
    return ""


def machine(pg_url: str | None) -> dict[str, Any]:
    model = ""
    for line in _command("lscpu").splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    info: dict[str, Any] = {
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "nproc": _command("nproc") or str(os.cpu_count()),
        "cpu_model": model or platform.processor(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "eventsourcing": version("eventsourcing"),
        "pydantic": version("pydantic"),
        "psycopg": version("psycopg"),
        "sqlite": sqlite3.sqlite_version,
    }
    if pg_url is not None:
        with contextlib.suppress(psycopg.Error), psycopg.connect(pg_url, connect_timeout=3) as c:
            row = c.execute("SHOW server_version").fetchone()
            info["postgresql"] = row[0] if row else ""
    return info


def _rate(value: float) -> str:
    return f"{value:,.0f}/s"


def _met(ok: bool) -> str:
    return "[green]met[/green]" if ok else "[red]not met[/red]"


def print_table(results: list[Backend], data: Data) -> None:
    table = Table(title="relledger ingest benchmark (events/s are recorded events)")
    table.add_column("measure")
    for result in results:
        table.add_column(result.name, justify="right")

    def row(label: str, value: Callable[[Backend], str]) -> None:
        table.add_row(label, *(value(result) for result in results))

    row("lines in file", lambda r: f"{r.ingest.lines:,}")
    row(
        "recorded / duplicate / late / rejected",
        lambda r: (
            f"{r.ingest.recorded:,} / {r.ingest.duplicates:,} / {r.ingest.late:,} / "
            f"{r.ingest.rejected:,}"
        ),
    )
    row(
        "write path: ingest from file",
        lambda r: f"{_rate(r.ingest.rate)} ({r.ingest.seconds:.2f} s)",
    )
    row(
        "fold: replay_all (read+decode+fold)",
        lambda r: f"{_rate(r.fold.rate)} ({r.fold.seconds:.2f} s)",
    )
    row(
        "  of which read+decode / fold only",
        lambda r: f"{r.fold.read_s:.2f} s / {r.fold.fold_s:.2f} s",
    )
    row("full path incl. fold 1/(1/ingest+1/fold)", lambda r: _rate(r.combined_rate))
    row("bare (a) 500 new aggregates/save", lambda r: _rate(r.bare_new_rate))
    row("bare (b) 1 aggregate, 500 events/save", lambda r: _rate(r.bare_one_rate))
    row("write path / best bare", lambda r: f"{r.write_ratio:.2f}")
    row(
        f"full path incl. fold / best bare (>= {TARGET_RATIO})",
        lambda r: f"{r.combined_ratio:.2f} {_met(r.combined_ratio >= TARGET_RATIO)}",
    )
    row(
        f"ingest of one relationship ({data.big_lines:,} events)",
        lambda r: f"{_rate(r.big_ingest.rate)} ({r.big_ingest.seconds:.2f} s)",
    )
    row(
        f"replay {BIG_ID}, median of {REPLAY_RUNS} (< {TARGET_REPLAY_S} s)",
        lambda r: f"{r.replay.median:.3f} s {_met(r.replay.median < TARGET_REPLAY_S)}",
    )
    row("  replay runs (s)", lambda r: " ".join(f"{t:.3f}" for t in r.replay.runs))
    row("  of which read (history), median", lambda r: f"{r.replay.read_median:.3f} s")
    console.print(table)


# --- profile --------------------------------------------------------------------------

# Where the write path spends its time, by stage (cumulative time of one function each;
# the stages nest only where said).
STAGES = {
    "parse_interaction": "validate (pydantic model_validate_json + kind rules)",
    "record_batch": "record_batch total (decide + save)",
    "_decide": "  decide (dedupe, open/record, event creation)",
    "canonical": "    canonical (model_dump mode=json)",
    "link": "    hash chain (orjson sort keys + sha256)",
    "trigger_event": "    trigger_event (event object + apply)",
    "_save": "  save (collect, map, transcode, insert, commit)",
    "to_stored_event": "    mapper.to_stored_event (incl. transcode)",
    "insert_events": "    recorder.insert_events (SQL + commit)",
}


def profile(events: int, relationships: int) -> None:
    with tempfile.TemporaryDirectory(prefix="relledger-bench-") as tmp:
        workdir = Path(tmp)
        data = generate(workdir, events, relationships, 2)
        ledger = open_ledger(f"sqlite:///{workdir}/profile.db", create=True)
        profiler = cProfile.Profile()
        try:
            with data.main.open("rb") as handle:
                profiler.enable()
                report = ingest_lines(ledger, handle, batch_size=BATCH, limits=SIMULATED_HISTORY)
                profiler.disable()
        finally:
            ledger.close()
    stats = pstats.Stats(profiler)
    total = max(row[3] for row in stats.stats.values())  # type: ignore[attr-defined]
    console.print(
        f"profiled SQLite ingest of {data.main_lines:,} lines ({report.recorded:,} recorded) "
        f"in {total:.2f} s under cProfile"
    )
    cumulative: dict[str, float] = {}
    for (_file, _line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        if name in STAGES:
            cumulative[name] = cumulative.get(name, 0.0) + row[3]
    table = Table(title="write path by stage (cumulative, under cProfile)")
    table.add_column("stage")
    table.add_column("s", justify="right")
    table.add_column("share", justify="right")
    for name, label in STAGES.items():
        seconds = cumulative.get(name, 0.0)
        table.add_row(label, f"{seconds:.2f}", f"{seconds / total:.0%}")
    console.print(table)
    for key in ("tottime", "cumulative"):
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).sort_stats(key).print_stats(25)
        console.print(f"[bold]top 25 by {key}[/bold]")
        print(buffer.getvalue())


# --- main -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="N events (default 100000)")
    parser.add_argument("--relationships", type=int, default=1000, help="M (default 1000)")
    parser.add_argument("--backends", default="sqlite,postgres", help="sqlite,postgres")
    parser.add_argument("--replay-events", type=int, default=10_000)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--pg-url", default=DEFAULT_PG, help=f"default {DEFAULT_PG}")
    parser.add_argument(
        "--bare-events", type=int, help="events per bare-library shape (default: N)"
    )
    parser.add_argument(
        "--profile",
        type=int,
        metavar="EVENTS",
        help="only profile a SQLite ingest of EVENTS events with cProfile",
    )
    args = parser.parse_args(argv)
    args.backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    unknown = set(args.backends) - {"sqlite", "postgres"}
    if unknown:
        parser.error(f"unknown backend(s): {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.profile:
        profile(args.profile, max(1, args.profile // 100))
        return 0
    backends: list[str] = list(args.backends)
    skipped: dict[str, str] = {}
    if "postgres" in backends:
        problem = postgres_problem(args.pg_url)
        if problem is not None:
            console.print(
                f"[yellow]skipping PostgreSQL: not reachable at {args.pg_url}: {problem}[/yellow]"
            )
            skipped["postgres"] = problem
            backends.remove("postgres")
    bare_events = max(BATCH, (args.bare_events or args.events) // BATCH * BATCH)
    info = machine(args.pg_url if "postgres" in backends else None)
    console.print(
        f"{info['date_utc']}  {info['nproc']} x {info['cpu_model']}  Python {info['python']}  "
        f"eventsourcing {info['eventsourcing']}  SQLite {info['sqlite']}"
        + (f"  PostgreSQL {info['postgresql']}" if "postgresql" in info else "")
    )
    started = time.perf_counter()
    results: list[Backend] = []
    with tempfile.TemporaryDirectory(prefix="relledger-bench-") as tmp:
        workdir = Path(tmp)
        step(
            f"generating {args.events:,} events over {args.relationships:,} relationships "
            f"and one relationship of {args.replay_events:,}"
        )
        data = generate(workdir, args.events, args.relationships, args.replay_events)
        step(f"generated {data.main_lines:,} + {data.big_lines:,} lines in {data.generate_s:.1f} s")
        for name in backends:
            stores = Stores(name, workdir, args.pg_url)
            try:
                results.append(run_backend(name, stores, data, bare_events))
            finally:
                stores.close()
    elapsed = time.perf_counter() - started
    if results:
        print_table(results, data)
    console.print(f"total wall time {elapsed:.0f} s")
    if args.json:
        payload = {
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": info,
            "params": {
                "events": args.events,
                "relationships": args.relationships,
                "replay_events": args.replay_events,
                "batch_size": BATCH,
                "bare_events": bare_events,
                "replay_runs": REPLAY_RUNS,
            },
            "lines": {"main": data.main_lines, "big": data.big_lines},
            "skipped": skipped,
            "wall_s": elapsed,
            "backends": {result.name: result.figures() for result in results},
        }
        args.json.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2) + b"\n")
        console.print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
