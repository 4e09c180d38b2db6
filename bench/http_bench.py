"""HTTP API benchmark for relledger: recording over HTTP against `relledger ingest`, and
standing reads under concurrent clients.

    python bench/http_bench.py [--events 20000] [--backends sqlite,postgres]
                               [--relationships 100000] [--rate 500,250] [--duration 20]
                               [--closed-duration 10] [--clients 50]
                               [--client httpx,raw] [--reads-store URL]
                               [--skip-recording] [--skip-reads] [--json out.json]

Everything runs on this machine over loopback, against real `relledger serve` processes
(started here on free ports, log level as deployed), with httpx as the client.

1. **Recording.** N simulated interactions (`relledger.simulate.simulate`) written as
   JSONL. Per backend, in the same run, into fresh stores:
   * baseline: `relledger ingest --max-future-skew 36500 FILE` as a process, timed
     end to end (its read-model update at the end included); its start-up (measured
     separately as `relledger --help`) is reported too, and subtracted in a second ratio;
   * HTTP: the same lines POSTed as NDJSON in batches of 500 by one client over one
     keep-alive connection, one batch after the other (each answer comes after the batch
     is recorded and the read models are up to date), from the first request to the
     last answer; the server's start is not timed.
   Events/s are recorded events per second. Target: HTTP >= 0.8 x the file rate.
2. **Standing reads** (SQLite): `simulate(M relationships, 2 events each)` loaded with
   `relledger ingest`, then `GET /v1/relationships/{id}` on random ids from C concurrent
   clients (asyncio tasks sharing one httpx.AsyncClient with C connections):
   * open loop at each fixed offered rate R for D seconds: request i is due at
     t0 + i/R and its latency is measured from that due time (so queueing behind a slow
     server counts, no coordinated omission); target p99 < 20 ms at 500 requests/s;
   * closed loop: C clients back to back for D' seconds, the maximum throughput;
   * each with two load generators: httpx.AsyncClient (C pooled connections), and a
     minimal hand-written HTTP/1.1 client (one connection per task) whose own CPU cost
     is small enough that the server, not the client, is measured;
   * in process, for reference: the key check and the standing query without HTTP.
   The CPU seconds used by the client (this process) and by the server process are
   reported with each, since both share the machine's cores.

It reports, it never fails: a benchmark, not a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
from ingest_bench import DEFAULT_PG, Stores, machine, postgres_problem, write_jsonl
from rich.console import Console
from rich.table import Table

from relledger.simulate import simulate
from service.keys import Role
from service.ledger_service import LedgerService
from service.schema import migrate

BATCH = 500
SKEW_DAYS = "36500"  # the simulated stories run years past today
TARGET_RATIO = 0.8
TARGET_P99_MS = 20.0
TARGET_RATE = 500.0  # requests/s at which the p99 target applies
CLK_TCK = os.sysconf("SC_CLK_TCK")

console = Console(width=None if sys.stdout.isatty() else 120)


def step(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}")


# --- servers and processes ------------------------------------------------------------


def relledger(url: str, *arguments: str) -> list[str]:
    return [sys.executable, "-m", "relledger", "--db", url, *arguments]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Serving:
    """`relledger serve` on a free loopback port, its output in a log file."""

    def __init__(self, url: str, log: Path) -> None:
        self.port = free_port()
        command = relledger(url, "serve", "--port", str(self.port), "--max-future-skew", SKEW_DAYS)
        with log.open("wb") as sink:
            self.process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited {self.process.returncode}: {log.read_text()}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("serve did not answer /healthz in 60 s")

    def cpu_s(self) -> float:
        """User + system CPU seconds the server process has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def key_for(url: str, role: Role) -> str:
    service = LedgerService.open(url)
    try:
        return service.keys.create(role, f"bench-{role.value}-{time.monotonic_ns()}")
    finally:
        service.close()


# --- 1. recording -----------------------------------------------------------------------


@dataclass
class Recording:
    backend: str
    lines: int
    cli_recorded: int
    cli_s: float
    startup_s: float
    http_recorded: int
    http_duplicates: int
    http_rejected: int
    http_s: float

    @property
    def cli_rate(self) -> float:
        return self.cli_recorded / self.cli_s

    @property
    def cli_rate_without_startup(self) -> float:
        return self.cli_recorded / (self.cli_s - self.startup_s)

    @property
    def http_rate(self) -> float:
        return self.http_recorded / self.http_s

    @property
    def ratio(self) -> float:
        return self.http_rate / self.cli_rate

    @property
    def ratio_without_startup(self) -> float:
        return self.http_rate / self.cli_rate_without_startup


def startup_seconds() -> float:
    """Wall time of `relledger --help`: the interpreter and import cost of any command."""
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "relledger", "--help"], capture_output=True)
        runs.append(time.perf_counter() - start)
    return sorted(runs)[1]


def cli_ingest(url: str, path: Path) -> tuple[int, float]:
    migrate(url)
    start = time.perf_counter()
    done = subprocess.run(
        relledger(url, "ingest", "--max-future-skew", SKEW_DAYS, str(path)),
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise RuntimeError(f"relledger ingest exited {done.returncode}: {done.stderr[-2000:]}")
    found = re.search(r"recorded (\d+)", done.stdout)
    if found is None:
        raise RuntimeError(f"no summary from relledger ingest: {done.stdout[-2000:]}")
    return int(found.group(1)), seconds


def http_ingest(url: str, path: Path, log: Path) -> tuple[dict[str, int], float]:
    migrate(url)
    key = key_for(url, Role.PRODUCER)
    lines = path.read_bytes().splitlines(keepends=True)
    batches = [b"".join(lines[i : i + BATCH]) for i in range(0, len(lines), BATCH)]
    totals = {"recorded": 0, "duplicates": 0, "rejected": 0}
    server = Serving(url, log)
    try:
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"}
        with httpx.Client(base_url=server.base, headers=headers, timeout=300) as client:
            start = time.perf_counter()
            for body in batches:
                answer = client.post("/v1/interactions", content=body)
                answer.raise_for_status()
                report = answer.json()
                totals["recorded"] += report["recorded"]
                totals["duplicates"] += report["duplicates"]
                totals["rejected"] += len(report["rejected"])
            seconds = time.perf_counter() - start
    finally:
        server.stop()
    return totals, seconds


def run_recording(backend: str, stores: Stores, path: Path, lines: int, workdir: Path) -> Recording:
    step(f"{backend}: relledger ingest of {lines:,} lines")
    cli_recorded, cli_s = cli_ingest(stores.fresh("cli"), path)
    step(f"{backend}: the same lines over HTTP in batches of {BATCH}")
    totals, http_s = http_ingest(stores.fresh("http"), path, workdir / f"serve-{backend}.log")
    return Recording(
        backend,
        lines,
        cli_recorded,
        cli_s,
        STARTUP_S,
        totals["recorded"],
        totals["duplicates"],
        totals["rejected"],
        http_s,
    )


STARTUP_S = 0.0


# --- 2. standing reads ------------------------------------------------------------------


@dataclass
class Load:
    label: str
    offered_rate: float | None
    clients: int
    seconds: float
    requests: int
    errors: dict[str, int]
    latencies_ms: list[float] = field(repr=False)
    client_cpu_s: float
    server_cpu_s: float

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]

    def figures(self) -> dict[str, Any]:
        summary = {k: v for k, v in asdict(self).items() if k != "latencies_ms"}
        return {
            **summary,
            "throughput_per_s": self.throughput,
            "p50_ms": self.percentile(0.50),
            "p90_ms": self.percentile(0.90),
            "p99_ms": self.percentile(0.99),
            "max_ms": max(self.latencies_ms, default=float("nan")),
        }


class RawConnection:
    """One keep-alive HTTP/1.1 connection written by hand: a load generator costing a
    few tens of microseconds of CPU per request, so the server, not the client, is what
    is measured (httpx costs about 2.6 ms of CPU per request here: docs/benchmarks.md)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: str):
        self.reader, self.writer = reader, writer
        self.head = f"Host: bench\r\nAuthorization: Bearer {key}\r\n\r\n".encode()

    @classmethod
    async def open(cls, port: int, key: str) -> RawConnection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, key)

    async def get(self, path: str) -> int:
        self.writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\n" + self.head)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return int(head[9:12])

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def _load(
    server: Serving,
    key: str,
    paths: list[str],
    clients: int,
    seconds: float,
    rate: float | None,
    client_kind: str,
) -> Load:
    """Open loop at `rate` (latency from each request's due time), or closed loop."""
    label = f"{'open' if rate else 'closed'} loop, {client_kind}"
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    rng = random.Random(11)
    async with httpx.AsyncClient(
        base_url=server.base, headers={"Authorization": f"Bearer {key}"}, limits=limits, timeout=30
    ) as client:
        getters: list[Callable[[str], Awaitable[int]]]
        raws: list[RawConnection] = []
        if client_kind == "raw":
            raws = [await RawConnection.open(server.port, key) for _ in range(clients)]
            getters = [raw.get for raw in raws]
        else:

            async def via_httpx(path: str) -> int:
                return (await client.get(path)).status_code

            getters = [via_httpx] * clients
        # warm-up: open every connection, not measured
        for _ in range(2):
            await asyncio.gather(*(get(rng.choice(paths)) for get in getters))
        counter = itertools.count()
        total = int(rate * seconds) if rate else None
        cpu0, server0 = time.process_time(), server.cpu_s()
        t0 = time.perf_counter() + 0.05
        stop_at = t0 + seconds

        async def worker(get: Callable[[str], Awaitable[int]]) -> None:
            while True:
                index = next(counter)
                if total is not None:
                    if index >= total:
                        return
                    due = t0 + index / (rate or 1)
                    delay = due - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                else:
                    due = time.perf_counter()
                    if due >= stop_at:
                        return
                try:
                    status = await get(rng.choice(paths))
                except (httpx.HTTPError, OSError, asyncio.IncompleteReadError) as error:
                    errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
                    continue
                latencies.append((time.perf_counter() - due) * 1000)
                if status != 200:
                    errors[str(status)] = errors.get(str(status), 0) + 1

        await asyncio.gather(*(worker(get) for get in getters))
        elapsed = time.perf_counter() - t0
        cpu, server_cpu = time.process_time() - cpu0, server.cpu_s() - server0
        for raw in raws:
            await raw.close()
    return Load(label, rate, clients, elapsed, len(latencies), errors, latencies, cpu, server_cpu)


def load_relationships(url: str, relationships: int, workdir: Path) -> tuple[list[str], float]:
    path = workdir / "reads.jsonl"
    ids: set[str] = set()

    def events() -> Any:
        for item in simulate(relationships, 2, seed=3, prefix="read"):
            ids.add(item["relationship_id"])
            yield item

    lines = write_jsonl(path, events())
    step(f"loading {lines:,} lines over {len(ids):,} relationships with relledger ingest")
    migrate(url)
    start = time.perf_counter()
    done = subprocess.run(
        relledger(url, "ingest", "--max-future-skew", SKEW_DAYS, str(path)), capture_output=True
    )
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise RuntimeError(f"relledger ingest exited {done.returncode}: {done.stderr[-2000:]!r}")
    return sorted(ids), seconds


def stored_ids(url: str) -> list[str]:
    """The relationship ids of an existing store, through the API's list route."""
    key = key_for(url, Role.READER)
    server = Serving(url, Path(tempfile.gettempdir()) / "relledger-http-bench-ids.log")
    ids: list[str] = []
    try:
        with httpx.Client(
            base_url=server.base, headers={"Authorization": f"Bearer {key}"}, timeout=60
        ) as client:
            cursor: str | None = None
            while True:
                params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
                page = client.get("/v1/relationships", params=params).json()
                ids.extend(item["relationship_id"] for item in page["items"])
                cursor = page["next"]
                if not cursor:
                    return ids
    finally:
        server.stop()


@dataclass
class InProcess:
    """What one standing costs without HTTP: the key check and the read-model query,
    called directly on one thread, as the route calls them."""

    calls: int
    key_check_ms: list[float] = field(repr=False)
    standing_ms: list[float] = field(repr=False)

    def figures(self) -> dict[str, Any]:
        def median(values: list[float]) -> float:
            return sorted(values)[len(values) // 2]

        return {
            "calls": self.calls,
            "key_check_median_ms": median(self.key_check_ms),
            "standing_median_ms": median(self.standing_ms),
            "per_request_ms": median(self.key_check_ms) + median(self.standing_ms),
        }


def in_process(url: str, ids: list[str], calls: int = 2000) -> InProcess:
    key = key_for(url, Role.READER)
    rng = random.Random(5)
    service = LedgerService.open(url)
    checks: list[float] = []
    standings: list[float] = []
    try:
        for _ in range(calls):
            start = time.perf_counter()
            service.keys.authenticate(key)
            middle = time.perf_counter()
            service.standing(rng.choice(ids))
            checks.append((middle - start) * 1000)
            standings.append((time.perf_counter() - middle) * 1000)
    finally:
        service.close()
    return InProcess(calls, checks, standings)


def run_reads(url: str, ids: list[str], args: argparse.Namespace, log: Path) -> list[Load]:
    key = key_for(url, Role.READER)
    paths = [f"/v1/relationships/{quote(i, safe='')}" for i in ids]
    server = Serving(url, log)
    loads: list[Load] = []
    try:
        for kind in args.clients_kinds:
            for rate in args.rates:
                step(
                    f"{kind}: open loop, {rate:g} requests/s for {args.duration:g} s, "
                    f"{args.clients} clients"
                )
                loads.append(
                    asyncio.run(_load(server, key, paths, args.clients, args.duration, rate, kind))
                )
            step(f"{kind}: closed loop, {args.clients} clients for {args.closed_duration:g} s")
            loads.append(
                asyncio.run(
                    _load(server, key, paths, args.clients, args.closed_duration, None, kind)
                )
            )
    finally:
        server.stop()
    return loads


# --- report -----------------------------------------------------------------------------


def _met(ok: bool) -> str:
    return "[green]met[/green]" if ok else "[red]not met[/red]"


def print_recording(results: list[Recording]) -> None:
    table = Table(title="recording: HTTP (NDJSON, batches of 500, one client) vs relledger ingest")
    table.add_column("measure")
    for result in results:
        table.add_column(result.backend, justify="right")

    def row(label: str, values: list[str]) -> None:
        table.add_row(label, *values)

    row("lines", [f"{r.lines:,}" for r in results])
    row(
        "relledger ingest (process, incl. start-up)",
        [f"{r.cli_rate:,.0f}/s ({r.cli_s:.2f} s)" for r in results],
    )
    row(
        "  without start-up",
        [f"{r.cli_rate_without_startup:,.0f}/s ({r.startup_s:.2f} s start-up)" for r in results],
    )
    row("HTTP POST", [f"{r.http_rate:,.0f}/s ({r.http_s:.2f} s)" for r in results])
    row(
        "  recorded / duplicates / rejected",
        [f"{r.http_recorded:,} / {r.http_duplicates:,} / {r.http_rejected:,}" for r in results],
    )
    row(
        f"HTTP / ingest (>= {TARGET_RATIO})",
        [f"{r.ratio:.2f} {_met(r.ratio >= TARGET_RATIO)}" for r in results],
    )
    row(
        "HTTP / ingest without its start-up",
        [
            f"{r.ratio_without_startup:.2f} {_met(r.ratio_without_startup >= TARGET_RATIO)}"
            for r in results
        ],
    )
    console.print(table)


def print_reads(loads: list[Load], relationships: int) -> None:
    table = Table(title=f"GET /v1/relationships/{{id}}, {relationships:,} relationships, SQLite")
    for name in (
        "run",
        "offered",
        "done/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "errors",
        "client CPU",
        "server CPU",
    ):
        table.add_column(name, justify="right" if name != "run" else "left")
    for load in loads:
        p99 = load.percentile(0.99)
        verdict = ""
        if load.offered_rate == TARGET_RATE:
            verdict = f" {_met(p99 < TARGET_P99_MS)}"
        table.add_row(
            f"{load.label}, {load.clients} conns, {load.seconds:.1f} s",
            f"{load.offered_rate:g}/s" if load.offered_rate else "max",
            f"{load.throughput:,.0f}",
            f"{load.percentile(0.5):.1f}",
            f"{load.percentile(0.9):.1f}",
            f"{p99:.1f}{verdict}",
            f"{max(load.latencies_ms, default=float('nan')):.1f}",
            str(sum(load.errors.values())),
            f"{load.client_cpu_s / load.seconds:.0%} of a core",
            f"{load.server_cpu_s / load.seconds:.0%} of a core",
        )
    console.print(table)


# --- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="N to record (20000)")
    parser.add_argument("--backends", default="sqlite,postgres", help="for recording")
    parser.add_argument("--relationships", type=int, default=100_000, help="M for reads")
    parser.add_argument(
        "--rate", default="500,250", help="open-loop offered rates, requests/s (500,250)"
    )
    parser.add_argument("--duration", type=float, default=20.0, help="open-loop seconds")
    parser.add_argument("--closed-duration", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument(
        "--client", default="httpx,raw", help="load generators: httpx,raw (default both)"
    )
    parser.add_argument("--reads-store", help="an already loaded store URL (skips loading)")
    parser.add_argument("--skip-recording", action="store_true")
    parser.add_argument("--skip-reads", action="store_true")
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    args.backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    args.rates = [float(rate) for rate in args.rate.split(",") if rate.strip()]
    args.clients_kinds = [name.strip() for name in args.client.split(",") if name.strip()]
    if set(args.clients_kinds) - {"httpx", "raw"}:
        parser.error("--client takes httpx, raw or both")
    return args


def main(argv: list[str] | None = None) -> int:
    global STARTUP_S
    args = parse_args(argv)
    backends: list[str] = list(args.backends)
    if "postgres" in backends and (problem := postgres_problem(args.pg_url)) is not None:
        console.print(f"[yellow]skipping PostgreSQL: {problem}[/yellow]")
        backends.remove("postgres")
    info = machine(args.pg_url if "postgres" in backends else None)
    console.print(
        f"{info['date_utc']}  {info['nproc']} x {info['cpu_model']}  Python {info['python']}  "
        f"SQLite {info['sqlite']}"
        + (f"  PostgreSQL {info['postgresql']}" if "postgresql" in info else "")
    )
    started = time.perf_counter()
    payload: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": info,
        "params": {k: v for k, v in vars(args).items() if k != "json"},
    }
    with tempfile.TemporaryDirectory(prefix="relledger-http-bench-") as tmp:
        workdir = Path(tmp)
        if not args.skip_recording:
            path = workdir / "record.jsonl"
            relationships = max(1, args.events // 50)
            lines = write_jsonl(path, simulate(relationships, 50, seed=7, prefix="http"))
            step(f"{lines:,} lines over {relationships:,} relationships; measuring start-up")
            STARTUP_S = startup_seconds()
            recordings: list[Recording] = []
            for backend in backends:
                stores = Stores(backend, workdir, args.pg_url)
                try:
                    recordings.append(run_recording(backend, stores, path, lines, workdir))
                finally:
                    stores.close()
            print_recording(recordings)
            payload["recording"] = [
                {
                    **asdict(r),
                    "cli_events_per_s": r.cli_rate,
                    "cli_events_per_s_without_startup": r.cli_rate_without_startup,
                    "http_events_per_s": r.http_rate,
                    "ratio": r.ratio,
                    "ratio_without_startup": r.ratio_without_startup,
                }
                for r in recordings
            ]
        if not args.skip_reads:
            if args.reads_store:
                url = args.reads_store
                ids = stored_ids(url)
                load_s = None
            else:
                url = f"sqlite:///{workdir}/reads.db"
                ids, load_s = load_relationships(url, args.relationships, workdir)
                step(f"loaded {len(ids):,} relationships in {load_s:.0f} s")
            step("in process: key check + standing, 2,000 calls")
            direct = in_process(url, ids)
            loads = run_reads(url, ids, args, workdir / "serve-reads.log")
            print_reads(loads, len(ids))
            found = direct.figures()
            console.print(
                f"in process, no HTTP: key check {found['key_check_median_ms']:.2f} ms + standing "
                f"{found['standing_median_ms']:.2f} ms (medians of {direct.calls:,})"
            )
            payload["reads"] = {
                "relationships": len(ids),
                "load_s": load_s,
                "in_process": found,
                "runs": [load.figures() for load in loads],
            }
    payload["wall_s"] = time.perf_counter() - started
    console.print(f"total wall time {payload['wall_s']:.0f} s")
    if args.json:
        args.json.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2) + b"\n")
        console.print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
