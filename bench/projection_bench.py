"""Projection benchmark: catch-up rate, query latency and the runner's memory.

    python bench/projection_bench.py [--events 1000000] [--relationships 100000]
                                     [--backends sqlite,postgres] [--queries 2000]
                                     [--json out.json]

Per backend: ingest N simulated interactions over M relationships (not timed as
the figure; reported for reference), then run `relledger project` logic from zero
in a child process (so its memory is its own) and report events/s and its
resident memory at each tenth of the way (flat means it does not grow with the
number of events), then time `show` (`queries.standing`) and `list --phase`
(`queries.list_relationships`, first page of 50) on random relationships and
phases: p50 and p99 over `--queries` calls each, on a freshly opened store.

Targets (issue 3): catch-up >= 20,000 events/s, `show` p99 < 5 ms, memory flat.
A benchmark, not a test: it reports and never fails.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from ingest_bench import DEFAULT_PG, Stores
from rich.console import Console
from rich.table import Table

from consumers.jsonl import ingest_lines
from domain.fold.records import Phase
from projections import queries
from projections.projector import Projector
from projections.tables import STABLE_NAMES
from projections.view import open_view
from relledger.simulate import SIMULATED_HISTORY, simulate
from service.policies import load_policy
from service.store import open_ledger

console = Console()


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child_catch_up(url: str) -> None:
    """Run in a fresh process: project everything, sampling memory every tenth."""
    ledger = open_ledger(url, create=True)
    view = open_view(ledger)
    view.ensure_live(load_policy())
    head = ledger.head()
    samples: list[tuple[int, float]] = [(0, rss_mib())]
    next_mark = head // 10

    def progress(done: int, _head: int) -> None:
        nonlocal next_mark
        if done >= next_mark:
            samples.append((done, rss_mib()))
            next_mark += head // 10

    start = time.perf_counter()
    report = Projector(ledger, view).catch_up(on_progress=progress)
    seconds = time.perf_counter() - start
    sys.stdout.write(
        json.dumps({"events": report.events, "seconds": seconds, "rss": samples}) + "\n"
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def query_latency(url: str, calls: int, seed: int = 1) -> dict[str, Any]:
    ledger = open_ledger(url, create=True)
    view = open_view(ledger)
    ids = [
        row["relationship_id"]
        for row in view.query(
            f"SELECT relationship_id FROM {view.dialect.name('relationship_summary')}"
        )
    ]
    rng = random.Random(seed)
    shows, lists = [], []
    for _ in range(calls):
        rid = rng.choice(ids)
        start = time.perf_counter()
        found = queries.standing(view, rid)
        shows.append(time.perf_counter() - start)
        assert found is not None
        phase = rng.choice(list(Phase))
        start = time.perf_counter()
        queries.list_relationships(view, queries.Filters(phase=phase), limit=50)
        lists.append(time.perf_counter() - start)
    ms = 1000
    return {
        "relationships": len(ids),
        "show_p50_ms": percentile(shows, 0.5) * ms,
        "show_p99_ms": percentile(shows, 0.99) * ms,
        "list_p50_ms": percentile(lists, 0.5) * ms,
        "list_p99_ms": percentile(lists, 0.99) * ms,
    }


def forget_read_models(url: str) -> int:
    """Drop an existing store's read models, so its catch-up starts from zero."""
    ledger = open_ledger(url, create=True)
    view = open_view(ledger)
    live = view.live()
    if live is not None:
        meta = view.dialect.name("relledger_projection")
        with view.transaction() as cursor:
            for stable in STABLE_NAMES.values():
                cursor.execute(f"DROP VIEW IF EXISTS {view.dialect.name(stable)}")
            view.discard(cursor, view.generation(live.generation))
            cursor.execute(f"DELETE FROM {meta}")
    return ledger.head()


def run_backend(
    backend: str, stores: Stores, data: Path | None, calls: int, existing: str | None = None
) -> dict[str, Any]:
    if existing is not None:
        url, ingest_s = existing, float("nan")
        recorded = forget_read_models(url)
    else:
        assert data is not None
        url = stores.fresh("proj")
        ledger = open_ledger(url, create=True)
        with console.status(f"{backend}: ingesting {data.name}..."), data.open("rb") as handle:
            start = time.perf_counter()
            recorded = ingest_lines(
                ledger, handle, batch_size=2000, limits=SIMULATED_HISTORY
            ).recorded
            ingest_s = time.perf_counter() - start
        ledger.close()
    with console.status(f"{backend}: projecting from zero (child process)..."):
        child = subprocess.run(
            [sys.executable, __file__, "--child-catch-up", url],
            capture_output=True,
            text=True,
            check=True,
        )
    caught = json.loads(child.stdout.strip().splitlines()[-1])
    with console.status(f"{backend}: timing queries..."):
        latency = query_latency(url, calls)
    rss = [mib for _, mib in caught["rss"]]
    return {
        "backend": backend,
        "recorded": recorded,
        "ingest_events_per_s": recorded / ingest_s,
        "catch_up_events": caught["events"],
        "catch_up_s": caught["seconds"],
        "catch_up_events_per_s": caught["events"] / caught["seconds"],
        "rss_mib_by_tenth": caught["rss"],
        "rss_growth_after_first_tenth_mib": max(rss[1:]) - rss[1] if len(rss) > 1 else 0.0,
        **latency,
    }


def report(results: list[dict[str, Any]]) -> None:
    table = Table(title="projections", title_justify="left")
    table.add_column("measure")
    for result in results:
        table.add_column(result["backend"], justify="right")
    rows = [
        ("events recorded", "recorded", "{:,}"),
        ("ingest (reference), events/s", "ingest_events_per_s", "{:,.0f}"),
        ("catch-up from zero, events/s (target >= 20,000)", "catch_up_events_per_s", "{:,.0f}"),
        ("catch-up time, s", "catch_up_s", "{:.1f}"),
        ("show p50, ms", "show_p50_ms", "{:.2f}"),
        ("show p99, ms (target < 5)", "show_p99_ms", "{:.2f}"),
        ("list --phase p50, ms", "list_p50_ms", "{:.2f}"),
        ("list --phase p99, ms", "list_p99_ms", "{:.2f}"),
        (
            "runner RSS growth after the first tenth, MiB",
            "rss_growth_after_first_tenth_mib",
            "{:.1f}",
        ),
    ]
    for label, key, fmt in rows:
        table.add_row(label, *(fmt.format(result[key]) for result in results))
    console.print(table)
    for result in results:
        samples = ", ".join(f"{mib:.0f}" for _, mib in result["rss_mib_by_tenth"])
        console.print(f"{result['backend']} runner RSS (MiB) at 0, 10%, ... 100%: {samples}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--relationships", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--store",
        metavar="URL",
        help="measure this existing store instead (its read models are dropped first)",
    )
    parser.add_argument("--child-catch-up", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_catch_up:
        child_catch_up(args.child_catch_up)
        return
    if args.store:
        backend = "sqlite" if args.store.startswith("sqlite") else "postgres"
        found = run_backend(
            backend, Stores(backend, Path("."), args.pg_url), None, args.queries, args.store
        )
        report([found])
        if args.json:
            args.json.write_text(json.dumps([found], indent=2))
        return
    per_relationship = max(2, args.events // args.relationships)
    results = []
    with tempfile.TemporaryDirectory(prefix="relledger-proj-bench-") as tmp:
        data = Path(tmp) / "events.jsonl"
        with console.status("generating events..."), data.open("wb") as out:
            for event in simulate(args.relationships, per_relationship, seed=11, prefix="b"):
                out.write(orjson.dumps(event) + b"\n")
        for backend in args.backends.split(","):
            stores = Stores(backend, Path(tmp), args.pg_url)
            try:
                results.append(run_backend(backend, stores, data, args.queries))
            except Exception as error:
                console.print(f"[red]{backend} skipped:[/] {error}")
            finally:
                stores.close()
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    console.print(
        f"python {sys.version.split()[0]}, {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"
    )


if __name__ == "__main__":
    main()
