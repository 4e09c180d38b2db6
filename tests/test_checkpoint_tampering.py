"""Signed checkpoints catch what the hash chains cannot, on both backends.

Each tampering is done behind relledger's back (`tamper.StoredRows`) after a checkpoint
was signed, and `verify --checkpoint` must refuse the ledger with exit 1 and one line
saying what broke; events really recorded after a checkpoint still extend it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
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
)
from conformance import DATA, RECORDED_AT
from tamper import Row, StoredRows

from consumers.jsonl import ingest_lines
from domain.chain import link
from service.store import open_ledger

RECORDED = "domain.relationship:Relationship.InteractionRecorded"


# -- what tampering looks like --------------------------------------------------------


def _delete_middle(rows: StoredRows) -> None:
    rows.delete(rows.rows("acme/quarrels")[3].position)


def _delete_relationships_last(rows: StoredRows) -> None:
    last_of_log = rows.rows()[-1].position
    steady = rows.rows("acme/steady")
    assert steady[-1].position != last_of_log
    rows.delete(steady[-1].position)


def _swap_within(rows: StoredRows) -> None:
    first, second = rows.rows("acme/decline")[4:6]
    rows.swap(first, second)


def _swap_neighbours(rows: StoredRows) -> None:
    """Two neighbouring events of different relationships change places: each chain
    still reads in order, only the log's order changed."""
    log = rows.rows()
    at = next(
        i for i in range(10, len(log)) if log[i].relationship_id != log[i + 1].relationship_id
    )
    rows.swap(log[at], log[at + 1])


def _insert_forged(rows: StoredRows) -> None:
    """A forged next event of a relationship, with the chain hash it would have had,
    slipped into the log right after that relationship's last event."""
    log = rows.rows()
    final = log[-1].relationship_id
    at = max(i for i, row in enumerate(log) if row.relationship_id != final)
    target = log[at]
    rows.append(target.relationship_id, target.version + 1, RECORDED, _forged(target, True))
    while True:
        log = rows.rows()
        forged = next(
            i for i, row in enumerate(log) if interaction_of(row)["event_id"] == "forged-1"
        )
        if forged == at + 1:
            return
        rows.swap(log[forged - 1], log[forged])


def _append_badly_forged(rows: StoredRows) -> None:
    """A forged event appended at the end with a hash that looks right but is not."""
    target = rows.rows("acme/steady")[-1]
    rows.append("acme/steady", target.version + 1, RECORDED, _forged(target, False))


def _rewrite_chain(rows: StoredRows) -> None:
    rows.rewrite_chain("acme/steady", lambda record: record.update(event_id="rewritten"))


def _change_topic(rows: StoredRows) -> None:
    """The topic is not in the hash chain (verify checks it on its own), but it is in
    the leaf: it says which class decodes the event."""
    row = rows.rows("acme/fraud")[2]
    rows.set_topic(row.position, "domain.relationship:Relationship.Opened")


def _move_to_another(rows: StoredRows) -> None:
    fraud = rows.rows("acme/fraud")
    rows.move(rows.rows("acme/steady")[-1], "acme/fraud", fraud[-1].version + 1)


def _forged(after: Row, correct_hash: bool) -> dict[str, Any]:
    record = {**interaction_of(after), "event_id": "forged-1"}
    hashed = record if correct_hash else interaction_of(after)
    return {
        "timestamp": after.state["timestamp"],
        "interaction": record,
        "late": False,
        "chain_hash": link(after.state["chain_hash"], hashed),
    }


CHANGED = "records no longer hash to the root of the checkpoint of 1270 records"
CHAINS_CHECK = "every hash chain still checks, so the history was rewritten"

TAMPERING = [
    pytest.param(edit_amount, [CHANGED, "; first break: acme/steady #"], id="edit"),
    pytest.param(_delete_middle, [FEWER, "; first break: acme/quarrels #"], id="delete-middle"),
    pytest.param(_delete_relationships_last, [FEWER, "deleted"], id="delete-relationships-last"),
    pytest.param(delete_logs_last, [FEWER, "deleted or the log truncated"], id="delete-logs-last"),
    pytest.param(_swap_within, [CHANGED, "; first break: acme/decline #"], id="reorder"),
    pytest.param(_swap_neighbours, [CHANGED, CHAINS_CHECK], id="reorder-across"),
    pytest.param(_insert_forged, [CHANGED, CHAINS_CHECK], id="insert-forged"),
    pytest.param(
        _append_badly_forged,
        ["extends the checkpoint of 1270", "chains are broken", "first: acme/steady #"],
        id="append-forged-hash",
    ),
    pytest.param(_rewrite_chain, [CHANGED, CHAINS_CHECK], id="rewrite-chain"),
    pytest.param(
        _change_topic,
        [CHANGED, "; first break: acme/fraud #3: stored as the wrong kind of event"],
        id="change-topic",
    ),
    pytest.param(_move_to_another, [CHANGED, "first break: acme/fraud #"], id="move"),
]


@pytest.mark.parametrize(("tamper", "said"), TAMPERING)
def test_tampering_after_a_checkpoint_is_caught(
    audited: Audited, tamper: Callable[[StoredRows], None], said: list[str]
) -> None:
    tamper(audited.rows)
    result = audited.verify()
    assert result.exit_code == 1, result.output
    line = one_line(result)
    assert line.startswith("error: ")
    for fragment in said:
        assert fragment in line
    assert result.stdout == ""


def test_a_whole_chain_rewritten_passes_the_chain_check_but_not_the_checkpoint(
    audited: Audited,
) -> None:
    """Why checkpoints exist: what `verify` alone misses."""
    _rewrite_chain(audited.rows)
    assert audited.cli("verify", "acme/steady").exit_code == 0
    assert audited.verify().exit_code == 1


def test_deleting_a_relationships_last_event_passes_the_chain_check_but_not_the_checkpoint(
    audited: Audited,
) -> None:
    _delete_relationships_last(audited.rows)
    assert audited.cli("verify", "acme/steady").exit_code == 0
    assert audited.verify().exit_code == 1


# -- what still verifies ---------------------------------------------------------------


def test_real_events_recorded_after_a_checkpoint_extend_it(store_url: str, tmp_path: Path) -> None:
    lines = (DATA / "events.jsonl").read_bytes().splitlines(keepends=True)
    ledger = open_ledger(store_url)
    ingest_lines(ledger, lines[:700], clock=lambda: RECORDED_AT)
    key = tmp_path / "signer"
    audited = Audited(store_url, tmp_path, key, new_key(key), tmp_path / "early.json")
    assert audited.take(audited.checkpoint).exit_code == 0
    early = audited.document()["size"]
    ingest_lines(ledger, lines[700:], clock=lambda: RECORDED_AT)
    ledger.close()

    result = audited.verify()
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        f"the ledger (1270 records) extends the checkpoint of {early} records signed by "
        f"{audited.key_id} at {audited.document()['time']}"
    )
    later = tmp_path / "later.json"
    assert audited.take(later).exit_code == 0
    assert audited.verify(later).exit_code == 0
    kept = json.loads(audited.cli("checkpoints", "--json").stdout)
    assert [one["size"] for one in kept] == [early, 1270]
    assert kept[-1] == json.loads(later.read_text())


def test_a_forged_event_appended_after_a_checkpoint_is_beyond_it(audited: Audited) -> None:
    """The limit of a checkpoint: it vouches for its first records and nothing after them.
    A forged event appended with the right chain hash reads like a real new one; what the
    checkpoint does guarantee is that nobody can prove it was part of the signed history."""
    target = audited.rows.rows("acme/steady")[-1]
    forged = _forged(target, True)
    audited.rows.append("acme/steady", target.version + 1, RECORDED, forged)
    assert audited.verify().exit_code == 0
    proof = audited.cli("prove", "acme/steady", str(target.version + 1))
    assert proof.exit_code == 2
    assert "stored after the checkpoint of 1270 records" in one_line(proof)
