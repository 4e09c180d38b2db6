"""Hostile and unlucky input through the real `relledger` command, on both backends.

Each test is a reproduction of a way one input, race or outage used to stop or
corrupt the ledger: the command must refuse the bad line with one readable line,
record everything else, and leave the read models current and the chains intact.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from conformance import DATA, EXPECTED, STORY_EVENTS, ingest_command
from tcp_proxy import TcpProxy

from service.schema import migrate
from service.store import open_ledger


def relledger(
    store_url: str, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relledger", "--db", store_url, *args],
        input=None if stdin is None else stdin.decode(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def line(**fields: Any) -> str:
    item: dict[str, Any] = {
        "event_id": "inv-1",
        "source": "billing",
        "relationship_id": "acme/bistro",
        "occurred_at": "2025-03-01T10:00:00+01:00",
        "kind": "purchase",
        "actor": "customer",
        "amount": "120.00",
        "currency": "EUR",
        "outcome": "met",
        "parties": {"supplier": "acme", "customer": "bistro"},
    }
    item.update(fields)
    return json.dumps({key: value for key, value in item.items() if value is not None})


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{text}\n" for text in lines))
    return path


def history(store_url: str, relationship_id: str) -> list[dict[str, Any]]:
    return [stored.record for stored in open_ledger(store_url).history(relationship_id)]


# --- conflicts are not duplicates ---------------------------------------------------


def test_a_reused_event_id_with_other_content_is_a_conflict(store_url: str, tmp_path: Path) -> None:
    first = line()
    later = line(event_id="inv-2", amount="80.00", parties=None, occurred_at="2025-03-02T10:00:00Z")
    changed = [
        line(amount="999.00"),  # another amount
        line(kind="trial"),  # another kind
        line(parties={"supplier": "acme", "customer": "someone-else"}),  # other parties
        line(
            event_id="inv-2",
            amount="80.00",
            currency="USD",
            parties=None,
            occurred_at="2025-03-02T10:00:00Z",
        ),  # another currency
    ]
    path = write_lines(tmp_path / "in.jsonl", [first, later, first, later, *changed])
    result = relledger(store_url, "ingest", str(path))
    assert result.returncode == 1
    assert "recorded 2 (late 0), duplicates 2, conflicts 4, rejected 4" in result.stdout
    refused = result.stderr.splitlines()
    assert refused == [
        "line 5: event_id: already recorded with other content at 'acme/bistro' #1",
        "line 6: event_id: already recorded with other content at 'acme/bistro' #1",
        "line 7: event_id: already recorded with other content at 'acme/bistro' #1",
        "line 8: event_id: already recorded with other content at 'acme/bistro' #2",
    ]
    recorded = history(store_url, "acme/bistro")
    assert [(r["event_id"], r["amount"]) for r in recorded] == [
        ("inv-1", "120.00"),
        ("inv-2", "80.00"),
    ]


# --- concurrent writers take turns ----------------------------------------------------


def test_four_writers_of_the_same_relationships_all_finish(store_url: str, tmp_path: Path) -> None:
    """Four systems (four sources) report on the same relationships at once, each through
    its own `ingest`: they keep colliding on the same aggregates, so each must wait its
    turn, and every event of every source must end up recorded exactly once."""
    stories = [json.loads(text) for text in (DATA / "events.jsonl").read_text().splitlines()]
    files = [
        write_lines(
            tmp_path / f"source{n}.jsonl",
            [json.dumps({**story, "source": f"system-{n}"}) for story in stories],
        )
        for n in range(4)
    ]
    processes = [
        subprocess.Popen(
            ingest_command(store_url, str(path)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in files
    ]
    results = [process.communicate(timeout=300) for process in processes]
    for process, (out, err) in zip(processes, results, strict=True):
        assert process.returncode == 0, err
        assert int(out.split()[1]) == STORY_EVENTS  # each source's events, once
    ledger = open_ledger(store_url)
    for relationship_id, story in EXPECTED.items():
        records = [stored.record for stored in ledger.history(relationship_id)]
        keys = {(record["source"], record["event_id"]) for record in records}
        assert len(keys) == len(records) == 4 * story["events"]
    verified = relledger(store_url, "verify")
    assert verified.returncode == 0, verified.stderr


# --- memory bounded by the work in hand --------------------------------------------------


def test_a_huge_line_and_a_flood_of_bad_ones_cost_no_more_memory(tmp_path: Path) -> None:
    """A 200 MB line is refused without being held; 200,000 invalid lines are reported as
    they come. Run in a fresh process so its peak memory is its own."""
    path = tmp_path / "hostile.jsonl"
    with path.open("wb") as handle:
        handle.write(line().encode() + b"\n")
        handle.write(b'{"event_id": "')
        for _ in range(200):
            handle.write(b"x" * 1024 * 1024)
        handle.write(b'"}\n')
        handle.write(b"not json at all\n" * 200_000)
        handle.write(
            line(event_id="inv-2", parties=None, occurred_at="2025-03-02T10:00:00Z").encode()
            + b"\n"
        )
    script = (
        "import re, sys\n"
        "from relledger.cli import main\n"
        "sys.argv = ['relledger', '--db', sys.argv[1], 'ingest', sys.argv[2]]\n"
        "try:\n    main()\nexcept SystemExit as done:\n"
        "    status = open('/proc/self/status').read()\n"
        "    peak = int(re.search(r'VmHWM:\\s+(\\d+)', status).group(1)) / 1024\n"
        "    print(f'peak {peak:.0f} MiB', file=sys.stderr)\n"
        "    raise\n"
    )
    migrate(f"sqlite:///{tmp_path}/ledger.db")
    result = subprocess.run(
        [sys.executable, "-c", script, f"sqlite:///{tmp_path}/ledger.db", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert "recorded 2 (late 0), duplicates 0, conflicts 0, rejected 200001" in result.stdout
    lines = result.stderr.splitlines()
    assert lines[0] == "line 2: message: is 209715216 bytes; the limit is 1048576"
    assert lines[1].startswith("line 3: json: not valid JSON")
    peak = float(lines[-1].split()[1])
    assert peak < 150, f"peak memory {peak} MiB for a 200 MB line"


# --- errors and outages ----------------------------------------------------------------


def test_an_unexpected_error_exits_4_with_one_line(tmp_path: Path) -> None:
    """A failure relledger has no name for must not exit 1 (rejected lines) nor spill a
    traceback; --debug shows it."""
    script = (
        "import sys\n"
        "import projections.audit as audit\n"
        "def broken(*args, **kwargs):\n    raise RuntimeError('disk on fire\\nsecond line')\n"
        "audit.verify_ledger = broken\n"
        "import relledger.cli as cli\n"
        "cli.verify_ledger = broken\n"
        "sys.argv = ['relledger', *sys.argv[1:]]\n"
        "cli.main()\n"
    )
    migrate(f"sqlite:///{tmp_path}/l.db")
    relledger(f"sqlite:///{tmp_path}/l.db", "ingest", "-", stdin=line().encode())
    args = [sys.executable, "-c", script, "--db", f"sqlite:///{tmp_path}/l.db"]
    plain = subprocess.run([*args, "verify"], capture_output=True, text=True, timeout=60)
    assert plain.returncode == 4
    assert plain.stderr.strip() == (
        "error: unexpected RuntimeError: disk on fire second line "
        "(run with --debug for the traceback)"
    )
    debug = subprocess.run([*args, "--debug", "verify"], capture_output=True, text=True, timeout=60)
    assert debug.returncode == 4
    assert "Traceback (most recent call last)" in debug.stderr


def test_a_new_sqlite_store_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    store = tmp_path / "private.db"
    assert relledger(f"sqlite:///{store}", "migrate").returncode == 0
    assert relledger(f"sqlite:///{store}", "ingest", "-", stdin=line().encode()).returncode == 0
    for path in tmp_path.glob("private.db*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


@pytest.mark.postgres
def test_ingest_waits_for_a_store_that_comes_back(postgres_url: str, tmp_path: Path) -> None:
    parts = urlsplit(postgres_url)
    path = write_lines(tmp_path / "in.jsonl", [line()])
    with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        proxy.cut()
        through = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
        threading.Timer(7.0, proxy.restore).start()
        result = relledger(through, "ingest", str(path))
    assert result.returncode == 0, result.stderr
    assert "waiting for the store (open)" in result.stderr
    assert "recorded 1 (late 0)" in result.stdout
    assert [r["event_id"] for r in history(postgres_url, "acme/bistro")] == ["inv-1"]


def test_ingest_gives_up_on_a_store_that_stays_away(tmp_path: Path) -> None:
    with TcpProxy("127.0.0.1", 9) as proxy:
        proxy.cut()
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/test"
        result = relledger(url, "ingest", "--wait-for-store", "8", "-", stdin=line().encode())
    assert result.returncode == 3
    assert "waiting for the store (open)" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: cannot reach the store")


# --- the reproductions: one event must not stop the ledger ---------------------------------


ONLY_PRINTABLE = "only printable characters are allowed"
POISON = [
    (
        line(event_id="p1", occurred_at="0001-01-01T00:00:00Z"),
        "occurred_at: 0001-01-01T00:00:00+00:00 is before 1900-01-01",
    ),
    (
        line(event_id="p2", relationship_id="acme/\u0000bistro"),
        f"relationship_id: contains control character U+0000 at index 5; {ONLY_PRINTABLE}",
    ),
    (
        line(event_id="p3", attributes={"n": 18446744073709551616}),
        "attributes.n: integer out of 64-bit range",
    ),
    (
        line(event_id="p4", occurred_at="9999-12-31T00:00:00Z"),
        "occurred_at: 9999-12-31T00:00:00+00:00 is more than 1 day after the recording time",
    ),
    (line(event_id="p5", currency="ZZZ"), "currency: 'ZZZ' is not an ISO 4217 currency code"),
    (
        line(event_id="p6", relationship_id="acme/\u001b[31mred"),
        f"relationship_id: contains control character U+001B at index 5; {ONLY_PRINTABLE}",
    ),
    ('{"event_id": "p7", "event_id": "p8"}', "event_id: duplicate key"),
    (line(event_id="p9", amount="1" * 5000), "amount: '" + "1" * 120 + "'... (5000 characters)"),
    (
        line(event_id="p10", amount="1" * 2_000_000),
        "message: is 2000265 bytes; the limit is 1048576",
    ),
]


def test_each_poison_line_is_refused_and_the_rest_recorded(store_url: str, tmp_path: Path) -> None:
    """The reproductions: each of these once stopped ingest or, recorded, every fold after
    it. Each is refused with one line naming the field, quoting little; the good lines
    around them are recorded and every command still works."""
    good = [
        line(
            event_id=f"g{n}",
            parties=None if n else {"supplier": "acme", "customer": "bistro"},
            occurred_at=f"2025-03-{n + 1:02d}T10:00:00Z",
        )
        for n in range(len(POISON) + 1)
    ]
    mixed = [good[0]]
    for n, (bad, _) in enumerate(POISON, start=1):
        mixed += [bad, good[n]]
    path = write_lines(tmp_path / "mixed.jsonl", mixed)
    result = relledger(store_url, "ingest", str(path))
    assert result.returncode == 1
    counts = f"recorded {len(good)} (late 0), duplicates 0, conflicts 0, rejected {len(POISON)}"
    assert counts in result.stdout
    refused = result.stderr.split("\n")[:-1]
    assert len(refused) == len(POISON)
    for number, (text, (_, reason)) in enumerate(zip(refused, POISON, strict=True)):
        assert text.startswith(f"line {2 * number + 2}: {reason}"), text
        assert len(text) < 400
    recorded = history(store_url, "acme/bistro")
    assert [r["event_id"] for r in recorded] == [f"g{n}" for n in range(len(good))]
    for command in (["project"], ["verify"], ["show", "acme/bistro"]):
        assert relledger(store_url, *command).returncode == 0
