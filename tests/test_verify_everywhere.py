"""`verify` gives one verdict wherever it is asked: a log truncated after a checkpoint
keeps every hash chain intact, and the CLI and the HTTP API must both say it is not."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from api_server import running
from conformance import ingest_file
from tamper import StoredRows
from typer.testing import CliRunner

from relledger.cli import app
from service.keys import Role
from service.ledger_service import LedgerService
from service.signing_keys import create_key_pair, load_signing_key

runner = CliRunner()


def test_a_truncated_log_fails_verify_on_the_cli_and_over_http(
    store_url: str, tmp_path: Path
) -> None:
    service = LedgerService.open(store_url)
    ingest_file(service.ledger)
    create_key_pair(tmp_path / "signer")
    service.checkpoints.take(load_signing_key(tmp_path / "signer"))
    auditor = service.keys.create(Role.AUDITOR, "audit")
    service.close()
    rows = StoredRows(store_url)
    rows.delete(rows.rows()[-1].position)  # the log's last event: every chain still checks

    cli = runner.invoke(app, ["--db", store_url, "verify", "--json"])
    assert cli.exit_code == 1
    answered = json.loads(cli.stdout)
    assert (answered["intact"], answered["chains_intact"]) == (False, True)
    assert "1 fewer than the checkpoint" in answered["checkpoint"]["problem"]

    with running(store_url, tmp_path / "serve.log") as server:
        over_http = httpx.get(
            f"{server.url}/v1/verify", headers={"Authorization": f"Bearer {auditor}"}
        ).json()
    assert over_http == answered  # one shape, one verdict
