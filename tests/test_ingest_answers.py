"""What `relledger ingest` answers when the input is not JSONL, with --json, and when a
user presses Ctrl-C half-way through a large file: real processes, real signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
from cli_process import relledger
from conformance import DATA, FAR_SKEW

from relledger.simulate import simulate
from service.ledger_service import LedgerService
from service.store import open_ledger


def _head(store_url: str) -> int:
    ledger = open_ledger(store_url)
    try:
        return ledger.head()
    finally:
        ledger.close()


def test_a_json_array_or_pretty_printed_json_is_refused_once(
    store_url: str, tmp_path: Path
) -> None:
    stories = [json.loads(line) for line in (DATA / "events.jsonl").read_text().splitlines()]
    array = tmp_path / "array.json"
    array.write_text(json.dumps(stories[:50], indent=2))
    pretty = tmp_path / "pretty.json"
    pretty.write_text("\n".join(json.dumps(story, indent=2) for story in stories[:50]))
    one_line_array = tmp_path / "one-line.json"
    one_line_array.write_text(json.dumps(stories[:50]))
    for path, looks in (
        (array, "a JSON array"),
        (one_line_array, "a JSON array"),
        (pretty, "pretty-printed JSON"),
    ):
        result = relledger(store_url, "ingest", *FAR_SKEW, str(path))
        assert result.returncode == 1, result.stderr
        errors = result.stderr.strip().splitlines()
        assert errors == [
            f"error: expected one JSON object per line (JSONL); this looks like {looks}"
        ]
        assert "recorded 0 (late 0), duplicates 0, conflicts 0, rejected 0" in result.stdout
    assert _head(store_url) == 0

    both = relledger(store_url, "ingest", *FAR_SKEW, str(pretty), str(DATA / "events.jsonl"))
    assert both.returncode == 1  # the good file is recorded; the other is named once
    assert both.stderr.count("pretty.json: expected one JSON object per line") == 1
    assert _head(store_url) == 1270


def test_ingest_json_prints_the_report(store_url: str) -> None:
    good = relledger(store_url, "ingest", *FAR_SKEW, str(DATA / "events.jsonl"), "--json")
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout) == {
        "recorded": 1270,
        "duplicates": 62,
        "late": 42,
        "conflicts": 0,
        "rejected": 0,
        "interrupted": False,
        "refused_files": [],
        "position": 1270,
    }
    bad = relledger(store_url, "ingest", *FAR_SKEW, str(DATA / "invalid.jsonl"), "--json")
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert (report["rejected"], report["position"]) == (11, 1270 + report["recorded"])
    assert "line 4: json: not valid JSON" in bad.stderr  # each rejected line, on stderr


def test_ctrl_c_stops_at_a_batch_boundary_and_the_same_command_resumes(
    store_url: str, tmp_path: Path
) -> None:
    big = tmp_path / "big.jsonl"
    events = [orjson.dumps(event) for event in simulate(1000, 40, seed=3)]
    big.write_bytes(b"\n".join(events) + b"\n")
    command = [
        sys.executable,
        "-m",
        "relledger",
        "--db",
        store_url,
        "ingest",
        *FAR_SKEW,
        "--batch-size",
        "100",
        str(big),
    ]
    running = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while _head(store_url) == 0:  # interrupt once recording is under way
            assert running.poll() is None, running.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        running.send_signal(signal.SIGINT)
        out, err = running.communicate(timeout=120)
    finally:
        if running.poll() is None:
            running.kill()
    assert running.returncode == 130, err
    assert "Run the same command again to resume" in err
    recorded = _head(store_url)
    assert 0 < recorded < len(events) * 0.98  # stopped early (~1% are redeliveries)
    assert f"read models at position {recorded}" in out
    assert "Traceback" not in err

    service = LedgerService.open(store_url)
    try:
        assert service.status().lag == 0  # what was recorded is projected
        assert service.verify().intact
    finally:
        service.close()

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    report = resumed.stdout
    first = int(out.split("recorded ")[1].split(" ")[0])
    again = int(report.split("recorded ")[1].split(" ")[0])
    duplicates = int(report.split("duplicates ")[1].split(",")[0])
    assert first == recorded  # whole batches: every interaction recorded was counted
    assert duplicates >= recorded  # each one recorded before comes back as a duplicate
    assert _head(store_url) == first + again
    complete = relledger(store_url, "ingest", *FAR_SKEW, str(big), "--json")
    assert json.loads(complete.stdout)["recorded"] == 0  # nothing was missing
