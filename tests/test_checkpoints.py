"""Signed checkpoints, on both backends: signing keys, taking and listing checkpoints,
what plain `verify` says of the latest checkpoint kept, and inclusion proofs, which are
checked offline with the store gone. What tampering after a checkpoint looks like is
in `test_checkpoint_tampering.py`.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from checkpoint_support import (
    FEWER,
    Audited,
    audited_fixture,  # noqa: F401
    delete_logs_last,
    edit_amount,
    interaction_of,
    new_key,
    one_line,
    runner,
)
from click.testing import Result
from conformance import RECORDED_AT, ingest_file
from tamper import StoredRows

from consumers.jsonl import ingest_lines
from relledger.cli import app
from service.signing_keys import load_public_key
from service.store import open_ledger

NO_STORE = "sqlite:////nonexistent-folder/no-store.db"


# -- the checkpoint itself ---------------------------------------------------------------


def test_a_checkpoint_signed_by_another_key_is_refused(audited: Audited) -> None:
    other = audited.folder / "other"
    other_id = new_key(other)
    result = audited.verify(public_key=other.with_name("other.pub"))
    assert result.exit_code == 1
    line = one_line(result)
    assert f"signed by key {audited.key_id}, not by key {other_id}" in line


def _edited(field: str, change: Callable[[Any], Any]) -> Callable[[dict[str, Any]], None]:
    return lambda document: document.__setitem__(field, change(document[field]))


def _other_hex(value: str) -> str:
    return ("1" if value[0] == "0" else "0") + value[1:]


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        pytest.param(_edited("size", lambda n: n - 1), "changed after signing", id="smaller"),
        pytest.param(_edited("size", lambda n: n + 5), "changed after signing", id="larger"),
        pytest.param(_edited("root", _other_hex), "changed after signing", id="root"),
        pytest.param(
            _edited("time", lambda t: t.replace("20", "19", 1)), "changed after signing", id="time"
        ),
        pytest.param(_edited("key_id", _other_hex), "not by key", id="key-id"),
    ],
)
def test_an_edited_checkpoint_is_refused(
    audited: Audited, edit: Callable[[dict[str, Any]], None], said: str
) -> None:
    document = audited.document()
    edit(document)
    edited = audited.folder / "edited.json"
    edited.write_text(json.dumps(document))
    result = audited.verify(edited)
    assert result.exit_code == 1, result.output
    assert said in one_line(result)


def test_a_malformed_checkpoint_file_names_the_file_and_the_field(audited: Audited) -> None:
    document = audited.document()
    del document["root"]
    broken = audited.folder / "broken.json"
    broken.write_text(json.dumps(document))
    result = audited.verify(broken)
    assert result.exit_code == 2
    assert one_line(result) == f"error: {broken}: field root is missing"
    broken.write_text("{not json")
    assert audited.verify(broken).exit_code == 2
    assert "not JSON" in one_line(audited.verify(broken))
    garbage_key = audited.folder / "garbage.pub"
    garbage_key.write_text("not a key")
    refused = audited.verify(public_key=garbage_key)
    assert refused.exit_code == 2
    assert f"{garbage_key}: not an Ed25519 public key" in one_line(refused)


def test_checkpoint_refuses_to_sign_a_broken_ledger(audited: Audited) -> None:
    edit_amount(audited.rows)
    result = audited.take(audited.folder / "refused.json")
    assert result.exit_code == 1
    line = one_line(result)
    assert "refusing to sign a ledger whose hash chains are broken" in line
    assert "first: acme/steady #" in line
    assert not (audited.folder / "refused.json").exists()
    assert len(json.loads(audited.cli("checkpoints", "--json").stdout)) == 1


def test_checkpoint_refuses_to_paper_over_a_truncation(audited: Audited) -> None:
    delete_logs_last(audited.rows)
    result = audited.take(audited.folder / "refused.json")
    assert result.exit_code == 1
    assert f"refusing to sign: the ledger has {FEWER}" in one_line(result)


def test_checkpoint_json_matches_the_file_and_the_store(audited: Audited) -> None:
    kept = json.loads(audited.cli("checkpoints", "--json").stdout)
    assert kept == [audited.document()]
    document = audited.document()
    assert document["format"] == "relledger-checkpoint/v1"
    assert re.fullmatch(r"[0-9a-f]{64}", document["root"])
    assert document["time"].endswith("+00:00")
    assert document["key_id"] == audited.key_id
    table = audited.cli("checkpoints")
    assert table.exit_code == 0
    assert audited.key_id in table.stdout and document["root"][:12] in table.stdout


# -- plain verify and the checkpoint kept in the store ---------------------------------------


def test_plain_verify_compares_with_the_latest_checkpoint_kept(audited: Audited) -> None:
    fine = audited.cli("verify")
    assert fine.exit_code == 0
    assert "extends the latest checkpoint kept in the store (1270 records" in fine.stdout
    assert "signature is not checked" in fine.stdout

    delete_logs_last(audited.rows)
    truncated = audited.cli("verify")
    assert truncated.exit_code == 1
    assert "1269 records in 41 relationships: intact" in truncated.stdout
    assert FEWER in one_line(truncated)
    report = json.loads(audited.cli("verify", "--json").stdout)
    assert report["intact"] is False and report["chains_intact"] is True
    assert report["checkpoint"]["extends"] is False
    assert report["checkpoint"]["signature_checked"] is False
    assert FEWER in report["checkpoint"]["problem"]


def test_plain_verify_says_nothing_extra_without_a_checkpoint(store_url: str) -> None:
    ledger = open_ledger(store_url)
    ingest_file(ledger)
    ledger.close()
    result = runner.invoke(app, ["--db", store_url, "verify"])
    assert result.exit_code == 0
    assert result.stdout == "1270 records in 41 relationships: intact\n"
    assert result.stderr == ""
    report = json.loads(runner.invoke(app, ["--db", store_url, "verify", "--json"]).stdout)
    assert report["checkpoint"] is None


# -- inclusion proofs --------------------------------------------------------------------


@dataclass
class Proven:
    audited: Audited
    proof: Path

    def check(
        self, proof: Path | None = None, checkpoint: Path | None = None, *options: str
    ) -> Result:
        """`verify-proof`, pointed at a store that does not exist: it must open none."""
        return runner.invoke(
            app,
            [
                "--db",
                NO_STORE,
                "verify-proof",
                str(proof or self.proof),
                "--checkpoint",
                str(checkpoint or self.audited.checkpoint),
                "--public-key",
                str(self.audited.public_key),
                *options,
            ],
        )

    def document(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.proof.read_text())
        return loaded


@pytest.fixture
def proven(audited: Audited) -> Iterator[Proven]:
    proof = audited.folder / "proof.json"
    made = audited.cli("prove", "acme/steady", "4", "--out", str(proof))
    assert made.exit_code == 0, made.output
    yield Proven(audited, proof)


def _destroy(url: str) -> None:
    rows = StoredRows(url)
    if rows.sqlite_path is not None:
        rows.sqlite_path.unlink()
    else:
        rows.drop_events()


def test_a_proof_checks_offline_with_the_store_gone(proven: Proven) -> None:
    stored = proven.audited.rows.rows("acme/steady")[3]
    document = proven.document()
    assert document["format"] == "relledger-proof/v1"
    assert document["size"] == 1270 and document["root"] == proven.audited.document()["root"]
    assert document["entry"]["interaction"] == stored.state["interaction"]
    assert document["entry"]["version"] == 4 and document["entry"]["topic"] == stored.topic
    assert document["leaf_index"] == next(
        i for i, row in enumerate(proven.audited.rows.rows()) if row.position == stored.position
    )
    _destroy(proven.audited.url)

    result = proven.check()
    assert result.exit_code == 0, result.output
    interaction = stored.state["interaction"]
    assert result.stdout.strip() == (
        f"acme/steady #4 ({interaction['kind']}, occurred {interaction['occurred_at']}) is "
        f"record {document['leaf_index'] + 1} of the checkpoint of 1270 records signed by "
        f"{proven.audited.key_id} at {proven.audited.document()['time']}"
    )
    answered = proven.check(None, None, "--json")
    assert answered.exit_code == 0, answered.output
    answer = json.loads(answered.stdout)
    assert answer["verified"] is True and answer["relationship_id"] == "acme/steady"
    assert answer["kind"] == interaction["kind"] and answer["version"] == 4
    assert answer["entry"] == document["entry"]


def _entry(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    return lambda document: change(document["entry"])


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        pytest.param(
            _entry(lambda entry: entry["interaction"].update(amount="1.00")),
            "the entry, its index or the path was changed",
            id="entry-amount",
        ),
        pytest.param(
            _entry(lambda entry: entry.update(version=5)),
            "acme/steady #5",
            id="entry-version",
        ),
        pytest.param(
            _entry(lambda entry: entry.update(topic="x:Y")), "does not hash", id="entry-topic"
        ),
        pytest.param(
            _edited("leaf_index", lambda index: index + 1), "does not hash", id="leaf-index"
        ),
        pytest.param(_edited("audit_path", lambda path: path[1:]), "does not hash", id="path"),
        pytest.param(
            _edited("audit_path", lambda path: [_other_hex(path[0]), *path[1:]]),
            "does not hash",
            id="path-node",
        ),
        pytest.param(
            _edited("size", lambda size: size - 1), "not in the checkpoint of 1270", id="size"
        ),
        pytest.param(_edited("root", _other_hex), "not in the checkpoint of 1270", id="root"),
    ],
)
def test_an_edited_proof_fails(
    proven: Proven, edit: Callable[[dict[str, Any]], None], said: str
) -> None:
    document = proven.document()
    edit(document)
    edited = proven.audited.folder / "edited-proof.json"
    edited.write_text(json.dumps(document))
    result = proven.check(edited)
    assert result.exit_code == 1, result.output
    assert said in one_line(result)


def test_a_proof_fails_against_another_checkpoint(proven: Proven) -> None:
    """A proof is tied to the tree its checkpoint signed, not just to the key."""
    later = proven.audited.folder / "later.json"
    target = proven.audited.rows.rows("acme/steady")[-1]
    ledger = open_ledger(proven.audited.url)
    ingest_lines(
        ledger,
        [json.dumps({**interaction_of(target), "event_id": "later-1"}).encode()],
        clock=lambda: RECORDED_AT,
    )
    ledger.close()
    assert proven.audited.take(later).exit_code == 0
    result = proven.check(checkpoint=later)
    assert result.exit_code == 1
    assert "proves inclusion in a tree of 1270 records" in one_line(result)


def test_prove_against_a_checkpoint_file_and_its_refusals(audited: Audited) -> None:
    proof = audited.folder / "proof.json"
    made = audited.cli("prove", "acme/fraud", "1", "--checkpoint", str(audited.checkpoint))
    assert made.exit_code == 0
    proof.write_text(made.stdout)
    assert Proven(audited, proof).check().exit_code == 0

    assert audited.cli("prove", "acme/nobody", "1").exit_code == 2
    assert "no record #999" in one_line(audited.cli("prove", "acme/fraud", "999"))

    delete_logs_last(audited.rows)
    smaller = audited.cli("prove", "acme/fraud", "1", "--checkpoint", str(audited.checkpoint))
    assert smaller.exit_code == 1
    assert FEWER in one_line(smaller)


def test_prove_needs_a_checkpoint(store_url: str) -> None:
    result = runner.invoke(app, ["--db", store_url, "prove", "acme/steady", "1"])
    assert result.exit_code == 2
    assert "no checkpoint is kept in this store" in one_line(result)


# -- signing keys ----------------------------------------------------------------------------


def test_a_new_private_key_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    key = tmp_path / "signer"
    previous = os.umask(0)  # even where new files would be world-writable
    try:
        key_id = new_key(key)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    public = tmp_path / "signer.pub"
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert re.fullmatch(r"[0-9a-f]{32}", key_id)
    assert load_public_key(public).key_id == key_id


def test_key_files_are_never_overwritten(tmp_path: Path) -> None:
    key = tmp_path / "signer"
    new_key(key)
    before = key.read_bytes(), (tmp_path / "signer.pub").read_bytes()
    again = runner.invoke(app, ["signing-key", "new", str(key)])
    assert again.exit_code == 2
    assert one_line(again) == f"error: {key} exists already: a key file is never overwritten"
    assert (key.read_bytes(), (tmp_path / "signer.pub").read_bytes()) == before

    lone = tmp_path / "lone"
    (tmp_path / "lone.pub").write_text("someone's public key")
    refused = runner.invoke(app, ["signing-key", "new", str(lone)])
    assert refused.exit_code == 2
    assert not lone.exists()
