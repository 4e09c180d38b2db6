"""The files of an audit are never clobbered: `--out` refuses an existing file (a signing
key above all) unless `--force`, and what it writes is whole."""

from __future__ import annotations

import json
from pathlib import Path

from conformance import ingest_file
from typer.testing import CliRunner

from relledger.cli import app
from service.ledger_service import LedgerService

runner = CliRunner()


def test_out_never_overwrites_a_file_unless_forced(store_url: str, tmp_path: Path) -> None:
    service = LedgerService.open(store_url)
    ingest_file(service.ledger)
    service.close()
    key = tmp_path / "signer"

    def cli(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["--db", store_url, *args])
        return result.exit_code, result.stderr

    assert cli("signing-key", "new", str(key))[0] == 0
    private = key.read_bytes()
    code, said = cli("checkpoint", "--signing-key", str(key), "--out", str(key))
    assert (code, key.read_bytes()) == (2, private)  # the key survives a slip of the hand
    assert f"{key} exists already: give another --out, or --force to replace it" in said
    assert json.loads(runner.invoke(app, ["--db", store_url, "checkpoints", "--json"]).stdout) == []

    first = tmp_path / "checkpoint.json"
    assert cli("checkpoint", "--signing-key", str(key), "--out", str(first))[0] == 0
    kept = first.read_text()
    assert cli("prove", "acme/steady", "4", "--out", str(first))[0] == 2
    assert first.read_text() == kept
    assert cli("prove", "acme/steady", "4", "--out", str(first), "--force")[0] == 0
    assert json.loads(first.read_text())["format"] == "relledger-proof/v1"
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left beside them
