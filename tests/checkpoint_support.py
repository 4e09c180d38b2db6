"""What `test_checkpoints` and `test_checkpoint_tampering` share: a store of the
conformance stories with a signing key and a checkpoint of it all (the `audited`
fixture), the CLI on it, a stored event's interaction, and the two tamperings both use."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from conformance import ingest_file
from tamper import Row, StoredRows
from typer.testing import CliRunner

from relledger.cli import app
from service.store import open_ledger

runner = CliRunner()
FEWER = "1269 records, 1 fewer than the checkpoint of 1270 records"


@dataclass
class Audited:
    """A store of the conformance stories, a signing key, and a checkpoint of it all."""

    url: str
    folder: Path
    key: Path
    key_id: str
    checkpoint: Path

    @property
    def public_key(self) -> Path:
        return self.key.with_name(self.key.name + ".pub")

    @property
    def rows(self) -> StoredRows:
        return StoredRows(self.url)

    def cli(self, *args: str) -> Result:
        return runner.invoke(app, ["--db", self.url, *args])

    def verify(self, checkpoint: Path | None = None, public_key: Path | None = None) -> Result:
        return self.cli(
            "verify",
            "--checkpoint",
            str(checkpoint or self.checkpoint),
            "--public-key",
            str(public_key or self.public_key),
        )

    def take(self, out: Path) -> Result:
        return self.cli("checkpoint", "--signing-key", str(self.key), "--out", str(out))

    def document(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.checkpoint.read_text())
        return loaded


def new_key(path: Path) -> str:
    made = runner.invoke(app, ["signing-key", "new", str(path)])
    assert made.exit_code == 0, made.output
    return made.stdout.strip()


def one_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(name="audited")
def audited_fixture(store_url: str, tmp_path: Path) -> Audited:
    ledger = open_ledger(store_url)
    ingest_file(ledger)
    ledger.close()
    key = tmp_path / "signer"
    found = Audited(store_url, tmp_path, key, new_key(key), tmp_path / "checkpoint.json")
    taken = found.take(found.checkpoint)
    assert taken.exit_code == 0, taken.output
    assert found.document()["size"] == 1270
    extends = found.verify()
    assert extends.exit_code == 0, extends.output
    return found


def edit_amount(rows: StoredRows) -> None:
    row = next(
        r for r in rows.rows("acme/steady") if r.version > 2 and "amount" in interaction_of(r)
    )
    rows.edit(row, lambda state: state["interaction"].update(amount="123456.78"))


def delete_logs_last(rows: StoredRows) -> None:
    rows.delete(rows.rows()[-1].position)


def interaction_of(row: Row) -> dict[str, Any]:
    interaction: dict[str, Any] = row.state["interaction"]
    return interaction
