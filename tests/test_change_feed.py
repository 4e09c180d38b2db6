"""The change feed's source: every standing the projector changes, in the order it
applied them, so a reader resuming after the last position it saw misses nothing."""

from __future__ import annotations

import json

from conformance import DATA, EXPECTED, RECORDED_AT

from consumers.jsonl import ingest_lines
from service.ledger_service import LedgerService


def test_a_reader_resuming_after_its_last_position_misses_no_change(store_url: str) -> None:
    lines = (DATA / "events.jsonl").read_bytes().splitlines(keepends=True)
    half = len(lines) // 2
    service = LedgerService.open(store_url)
    ingest_lines(service.ledger, lines[:half], clock=lambda: RECORDED_AT)
    service.catch_up()

    first = service.changes_after(0, limit=10_000)
    positions = [position for position, _ in first]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    seen = {standing["relationship_id"]: standing for _, standing in first}
    last_seen = positions[-1]

    items = [json.loads(line) for line in lines if line.strip()]
    earlier = {(item["source"], item["event_id"]) for item in items[:half]}
    touched_later = {  # a redelivery changes nothing, so it is no change to report
        item["relationship_id"]
        for item in items[half:]
        if (item["source"], item["event_id"]) not in earlier
    }
    ingest_lines(service.ledger, lines[half:], clock=lambda: RECORDED_AT)
    service.catch_up()
    resumed = service.changes_after(last_seen, limit=10_000)
    assert {standing["relationship_id"] for _, standing in resumed} == touched_later
    assert all(position > last_seen for position, _ in resumed)
    seen.update({standing["relationship_id"]: standing for _, standing in resumed})

    # What the reader holds now is every relationship as it stands.
    assert set(seen) == set(EXPECTED)
    for relationship_id, standing in seen.items():
        assert standing["events"] == EXPECTED[relationship_id]["events"], relationship_id
        assert standing == service.standing(relationship_id)
    paged = service.changes_after(0, limit=7)
    assert [position for position, _ in paged] == sorted(p for p, _ in service.changes_after(0))[:7]
    service.close()
