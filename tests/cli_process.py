"""relledger's CLI run as a user runs it: a real process, with its exit code, stdout and
stderr apart (where output or exit codes are the point, an in-process runner would hide
what a terminal, a pipe or a signal does)."""

from __future__ import annotations

import subprocess
import sys

from conformance import DATA, FAR_SKEW


def relledger(store_url: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relledger", "--db", store_url, *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def with_stories(store_url: str) -> str:
    """`store_url` after `relledger ingest` of the conformance stories (all recorded)."""
    result = relledger(store_url, "ingest", *FAR_SKEW, str(DATA / "events.jsonl"))
    assert result.returncode == 0, result.stderr
    return store_url
