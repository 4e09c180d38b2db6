"""`relledger export`: the backup and the move between backends, both directions.

A ledger made of the conformance stories (late events, redeliveries) and a simulated
data set (retractions, late arrivals) is exported from one backend and ingested into an
empty store of the other, through the real CLI. What is promised, and asserted: every
hash chain ends at the same head, every relationship stands the same, the same
interactions are late, and an export of the copy holds each relationship's lines in the
same order, byte for byte. What is not promised (the recording times, and so the
Merkle root a checkpoint signs; how relationships interleave in the log) is not
asserted.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import orjson
import pytest
from cli_process import relledger, with_stories
from conformance import DATA, EXPECTED, FAR_SKEW
from conftest import fresh_postgres_schema

from relledger.simulate import simulate
from service.ledger_service import LedgerService
from service.schema import migrate


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The conformance stories, then a simulated data set with retractions."""
    path = tmp_path_factory.mktemp("history") / "history.jsonl"
    simulated = [orjson.dumps(event) for event in simulate(40, 40, seed=7)]
    assert sum(b'"retraction"' in line for line in simulated) >= 5
    path.write_bytes((DATA / "events.jsonl").read_bytes() + b"\n".join(simulated) + b"\n")
    return path


@contextmanager
def _store(kind: str, folder: Path, name: str) -> Iterator[str]:
    """A fresh, migrated store of `kind`."""
    if kind == "sqlite":
        url = f"sqlite:///{folder}/{name}.db"
        migrate(url)
        yield url
        return
    with fresh_postgres_schema() as url:
        migrate(url)
        yield url


@pytest.fixture(
    params=[
        pytest.param(("sqlite", "postgres"), marks=pytest.mark.postgres, id="sqlite-to-postgres"),
        pytest.param(("postgres", "sqlite"), marks=pytest.mark.postgres, id="postgres-to-sqlite"),
    ]
)
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    source, target = request.param
    with ExitStack() as stack:
        yield (
            stack.enter_context(_store(source, tmp_path, "source")),
            stack.enter_context(_store(target, tmp_path, "target")),
        )


def _ledger_facts(url: str) -> tuple[dict[str, str], dict[str, dict[str, object]], list[bool]]:
    """Chain heads, every standing (from the read models), and the late flags in order."""
    service = LedgerService.open(url)
    try:
        heads = service.verify().heads
        ids = sorted(heads)
        standings = {rid: service.standing(rid) for rid in ids}
        late = [one.late for rid in ids for one in service.ledger.history(rid)]
        return heads, standings, late
    finally:
        service.close()


def test_an_export_ingested_into_an_empty_store_of_the_other_backend_is_the_same_ledger(
    stores: tuple[str, str], history: Path, tmp_path: Path
) -> None:
    source, target = stores
    recorded = relledger(source, "ingest", *FAR_SKEW, str(history))
    assert recorded.returncode == 0, recorded.stderr
    backup = tmp_path / "backup.jsonl"
    exported = relledger(source, "export", "--out", str(backup), "--json")
    assert exported.returncode == 0, exported.stderr
    summary = json.loads(exported.stdout)
    lines = backup.read_bytes().splitlines()
    assert summary["interactions"] == len(lines) and summary["path"] == str(backup)
    assert summary["restore"].startswith("relledger --db NEW_STORE_URL ingest --max-future-skew")

    restored = relledger(target, "ingest", *FAR_SKEW, str(backup), "--json")
    assert restored.returncode == 0, restored.stderr
    report = json.loads(restored.stdout)
    assert (report["recorded"], report["duplicates"], report["rejected"]) == (len(lines), 0, 0)

    heads, standings, late = _ledger_facts(source)
    assert len(heads) == len(EXPECTED) + 40
    assert _ledger_facts(target) == (heads, standings, late)
    assert sum(late) > 0 and sum(s["retracted"] for s in standings.values()) >= 5  # type: ignore[misc]
    verified = json.loads(relledger(target, "verify", "--json").stdout)
    assert verified["chains_intact"] and verified["heads"] == heads
    again = tmp_path / "again.jsonl"
    assert relledger(target, "export", "--out", str(again)).returncode == 0
    assert _by_relationship(again) == _by_relationship(backup)


def _by_relationship(export: Path) -> dict[str, list[bytes]]:
    """Each relationship's lines in file order: what an export keeps exactly (a batch is
    stored grouped by relationship, so relationships may interleave otherwise)."""
    found: dict[str, list[bytes]] = {}
    for line in export.read_bytes().splitlines():
        found.setdefault(json.loads(line)["relationship_id"], []).append(line)
    return found


@pytest.fixture
def loaded(store_url: str) -> str:
    return with_stories(store_url)


def test_export_to_stdout_is_canonical_jsonl_and_an_existing_file_needs_force(
    loaded: str, tmp_path: Path
) -> None:
    printed = relledger(loaded, "export")
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    assert len(lines) == sum(story["events"] for story in EXPECTED.values())
    first = json.loads(lines[0])
    assert lines[0] == orjson.dumps(first, option=orjson.OPT_SORT_KEYS).decode()
    assert "restore into an empty store with: relledger --db NEW_STORE_URL ingest" in (
        printed.stderr
    )
    assert all('"amount":"' in line for line in lines if '"amount"' in line)  # money as text

    out = tmp_path / "out" / "ledger.jsonl"
    out.parent.mkdir()
    out.write_text("keep me\n")
    refused = relledger(loaded, "export", "--out", str(out))
    assert refused.returncode == 2 and "exists already" in refused.stderr
    assert out.read_text() == "keep me\n"
    assert relledger(loaded, "export", "--out", str(out), "--force").returncode == 0
    assert out.read_text() == printed.stdout
    assert list(out.parent.iterdir()) == [out]  # no temporary file left behind


def test_read_models_export_as_csv(loaded: str, tmp_path: Path) -> None:
    folder = tmp_path / "csv"
    result = relledger(loaded, "export", "--read-models", str(folder), "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    with (folder / "relationship_summary.csv").open(newline="", encoding="utf-8") as handle:
        summary = list(csv.DictReader(handle))
    assert len(summary) == rows["relationship_summary.csv"] == len(EXPECTED)
    assert "state" not in summary[0] and "trust" in summary[0] and "value_gap" in summary[0]
    for row in summary:
        expected = EXPECTED[row["relationship_id"]]
        assert round(float(row["trust"]), 4) == expected["trust"]
        assert row["phase"] == (expected["phase"] or "")
    steady = relledger(loaded, "trust-history", "acme/steady", "--json")
    with (folder / "trust_changes.csv").open(newline="", encoding="utf-8") as handle:
        trust = [row for row in csv.DictReader(handle) if row["relationship_id"] == "acme/steady"]
    assert [row["event_id"] for row in trust] == [c["event_id"] for c in json.loads(steady.stdout)]
    assert (folder / "phase_changes.csv").read_text().startswith("relationship_id,position,n,")
    again = relledger(loaded, "export", "--read-models", str(folder))
    assert again.returncode == 2 and "exists already" in again.stderr
