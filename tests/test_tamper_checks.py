"""What `verify` says about a store edited behind relledger's back, on both backends.

Each test edits the stored events directly (`tamper.StoredRows`) and checks that
verification names exactly what was done, once, without blaming untouched records;
and that an ingest meeting such a record stops with one line instead of a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conformance import DATA, FAR_SKEW
from hypothesis import given
from hypothesis import strategies as st
from tamper import cli, loaded
from typer.testing import Result

from domain.chain import misplaced
from service.ledger_service import LedgerService

OPENED = "domain.relationship:Relationship.Opened"
RECORDED = "domain.relationship:Relationship.InteractionRecorded"


def _broken(result: Result) -> list[str]:
    """The breaks `verify` printed, without their BROKEN prefix."""
    prefix = "BROKEN "
    return [line[len(prefix) :] for line in result.stderr.splitlines() if line.startswith(prefix)]


def _one_more(tmp_path: Path, relationship_id: str) -> Path:
    """A file of one new, valid interaction for `relationship_id` (after its last one)."""
    lines = (DATA / "events.jsonl").read_text().splitlines()
    last = json.loads(next(line for line in reversed(lines) if f'"{relationship_id}"' in line))
    last.update(event_id="e-after-tamper", occurred_at="2029-04-30T12:00:00Z")
    path = tmp_path / "more.jsonl"
    path.write_text(json.dumps(last) + "\n")
    return path


# -- no ledger, or nothing in it --------------------------------------------------------


def test_verify_says_the_ledger_is_gone_when_its_table_was_dropped(store_url: str) -> None:
    loaded(store_url).drop_events()
    result = cli(store_url, "verify")
    assert result.exit_code == 3
    assert "intact" not in result.stdout
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: the events table ") and line.endswith(
        "is missing: the ledger was removed, or this is not a relledger store"
    )


def test_verify_of_an_empty_store_says_there_is_nothing_to_verify(store_url: str) -> None:
    service = LedgerService.open(store_url)
    try:
        report = service.verify()
    finally:
        service.close()
    assert report.intact and report.records == 0
    assert report.summary() == "no interactions recorded yet: nothing to verify"
    result = cli(store_url, "verify")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == "no interactions recorded yet: nothing to verify"


# -- the stored topic --------------------------------------------------------------------


def test_an_edited_topic_is_a_break_and_ingest_stops_with_one_line(
    store_url: str, tmp_path: Path
) -> None:
    rows = loaded(store_url)
    steady, fraud, quarrels = (rows.rows(r) for r in ("acme/steady", "acme/fraud", "acme/quarrels"))
    assert (steady[0].topic, steady[2].topic) == (OPENED, RECORDED)
    rows.set_topic(steady[2].position, OPENED)
    rows.set_topic(fraud[0].position, RECORDED)
    rows.set_topic(quarrels[1].position, "domain.relationship:Nothing")
    result = cli(store_url, "verify")
    assert result.exit_code == 1
    assert _broken(result) == [
        "acme/fraud #1: stored as the wrong kind of event "
        f"({RECORDED}, where relledger records {OPENED}): its topic was edited",
        "acme/quarrels #2: stored as the wrong kind of event "
        f"(domain.relationship:Nothing, where relledger records {RECORDED}): "
        "its topic was edited",
        "acme/steady #3: stored as the wrong kind of event "
        f"({OPENED}, where relledger records {RECORDED}): its topic was edited",
    ]
    for relationship_id in ("acme/steady", "acme/fraud", "acme/quarrels"):
        ingest = cli(store_url, "ingest", *FAR_SKEW, str(_one_more(tmp_path, relationship_id)))
        assert ingest.exit_code == 3, relationship_id
        assert ingest.exception is None or isinstance(ingest.exception, SystemExit)
        [line] = ingest.stderr.strip().splitlines()
        assert line.startswith(f"error: relationship '{relationship_id}' cannot be loaded")
        assert line.endswith("run relledger verify")
    assert cli(store_url, "verify", "acme/steady").exit_code == 1
    assert cli(store_url, "verify", "acme/generous").exit_code == 0


# -- the log's order ---------------------------------------------------------------------


def test_two_neighbours_swapped_in_the_log_are_one_break(store_url: str) -> None:
    rows = loaded(store_url)
    decline = rows.rows("acme/decline")
    rows.swap(decline[4], decline[5])
    result = cli(store_url, "verify")
    assert result.exit_code == 1
    assert _broken(result) == [
        f"acme/decline #6: out of order in the log: stored at position {decline[4].position}, "
        "before #5; the read models fold the log in this order"
    ]
    assert "1 break(s)" in result.stdout
    assert _broken(cli(store_url, "verify", "acme/decline")) == _broken(result)


def test_a_record_swapped_far_away_is_named_with_its_partner(store_url: str) -> None:
    rows = loaded(store_url)
    decline = rows.rows("acme/decline")
    rows.swap(decline[2], decline[9])  # #3 and #10 trade places
    found = _broken(cli(store_url, "verify"))
    assert [line.split(":")[0] for line in found] == ["acme/decline #3", "acme/decline #10"]
    assert all("out of order in the log" in line for line in found)


def test_a_swap_across_relationships_that_keeps_each_order_changes_nothing(
    store_url: str,
) -> None:
    """Each relationship's events stay in their order: every fold gives what it gave."""
    rows = loaded(store_url)
    quarrels = rows.rows("acme/quarrels")
    before = next(r for r in rows.rows() if r.position == quarrels[0].position - 1)
    assert before.relationship_id != "acme/quarrels"
    rows.swap(before, quarrels[0])
    assert cli(store_url, "verify").exit_code == 0


@given(st.lists(st.integers(1, 40), unique=True, max_size=40))
def test_misplaced_names_the_fewest_records_that_explain_any_order(versions: list[int]) -> None:
    moved = misplaced(versions)
    kept = [v for i, v in enumerate(versions) if i not in moved]
    assert kept == sorted(kept)
    assert (not moved) == (versions == sorted(versions))
    # no fewer would do: the longest increasing run, by brute force for short lists
    if len(versions) <= 10:
        assert len(versions) - len(moved) == _longest_increasing(versions)


def _longest_increasing(values: list[int]) -> int:
    best = [1] * len(values)
    for i, value in enumerate(values):
        for j in range(i):
            if values[j] < value:
                best[i] = max(best[i], best[j] + 1)
    return max(best, default=0)


# -- an event moved into another relationship's aggregate ----------------------------


def test_a_record_moved_into_another_relationship_is_named_where_it_is(
    store_url: str,
) -> None:
    rows = loaded(store_url)
    decline, steady = rows.rows("acme/decline"), rows.rows("acme/steady")
    moved = decline[4]
    assert moved.position < steady[0].position  # the foreign record comes first in the log
    rows.move(moved, "acme/steady", len(steady) + 1)
    result = cli(store_url, "verify")
    assert result.exit_code == 1
    event_id = repr(moved.state["interaction"]["event_id"])
    assert _broken(result) == [
        "acme/decline #6: record 5 is missing before it (removed, or moved into another "
        "relationship)",
        f"acme/steady #{len(steady) + 1}: holds a record of 'acme/decline' (event {event_id}): "
        "moved here from that relationship",
    ]
    assert "41 relationships" in result.stdout
    assert cli(store_url, "verify", "acme/fraud").exit_code == 0


def test_a_record_moved_into_a_gap_is_named_and_so_is_the_record_it_replaced(
    store_url: str,
) -> None:
    rows = loaded(store_url)
    decline, steady = rows.rows("acme/decline"), rows.rows("acme/steady")
    rows.delete(steady[6].position)
    rows.move(decline[-1], "acme/steady", 7)
    found = _broken(cli(store_url, "verify"))
    event_id = repr(decline[-1].state["interaction"]["event_id"])
    assert found == [
        f"acme/steady #7: holds a record of 'acme/decline' (event {event_id}): "
        "moved here from that relationship",
        "acme/steady #8: record 7 is missing before it (removed, or moved into another "
        "relationship)",
    ]


@pytest.mark.parametrize("where", ["first", "last"])
def test_an_edited_record_is_one_break_wherever_it_is(store_url: str, where: str) -> None:
    rows = loaded(store_url)
    fraud = rows.rows("acme/fraud")
    victim = fraud[0] if where == "first" else fraud[-1]
    rows.edit(victim, lambda state: state["interaction"].update(actor="nobody"))
    assert _broken(cli(store_url, "verify")) == [
        f"acme/fraud #{victim.version}: content does not match its hash (this record was "
        "edited, or the one before it rewritten)"
    ]


def test_an_edited_relationship_id_is_named_as_an_edit_not_a_move(store_url: str) -> None:
    rows = loaded(store_url)
    fraud = rows.rows("acme/fraud")
    rows.edit(fraud[3], lambda state: state["interaction"].update(relationship_id="acme/steady"))
    assert _broken(cli(store_url, "verify")) == [
        "acme/fraud #4: names 'acme/steady' instead of 'acme/fraud': its relationship_id was edited"
    ]


def test_a_record_moved_to_a_relationship_never_recorded_is_found_by_its_name(
    store_url: str,
) -> None:
    rows = loaded(store_url)
    decline = rows.rows("acme/decline")
    rows.move(decline[-1], "acme/nobody", 1)
    event_id = repr(decline[-1].state["interaction"]["event_id"])
    moved_line = (
        f"acme/nobody #1: holds a record of 'acme/decline' (event {event_id}): moved here "
        "from that relationship"
    )
    one = cli(store_url, "verify", "acme/nobody")
    assert one.exit_code == 1 and _broken(one) == [moved_line]
    everything = _broken(cli(store_url, "verify"))
    assert len(everything) == 1
    assert everything[0].endswith(moved_line[len("acme/nobody") :])
    assert everything[0].startswith("(aggregate ")


def test_a_record_decoding_to_the_wrong_types_is_a_break_not_a_crash(store_url: str) -> None:
    rows = loaded(store_url)
    fraud = rows.rows("acme/fraud")
    rows.edit(fraud[2], lambda state: state["interaction"].update(relationship_id=123))
    rows.edit(fraud[4], lambda state: state.update(chain_hash=None))
    result = cli(store_url, "verify")
    assert result.exit_code == 1
    assert _broken(result) == [
        "acme/fraud #3: unreadable: its relationship_id is 123, not text",
        "acme/fraud #5: unreadable: its chain hash is None, not text",
    ]
    refused = cli(store_url, "replay", "acme/fraud")
    assert refused.exit_code == 1 and "acme/fraud #3: unreadable" in refused.stderr
