"""The write path decides from constant-size state: keys in their own index (unique across
the ledger, kept across restarts), relationships loaded from snapshots.

What a producer notices: a key reused for another relationship is a conflict naming
where it was recorded; a redelivery after a restart is still a duplicate; a long
relationship is decided from a small state; and a store recorded before the index
existed keeps deciding the same way once `relledger migrate` has filled it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
import pytest
from conformance import ingest_file
from eventsourcing.persistence import IntegrityError
from hypothesis import given, settings
from hypothesis import strategies as st
from tamper import StoredRows

from domain.chain import GENESIS, canonical_json, link_bytes
from domain.contract import Interaction, parse_interaction
from domain.errors import InteractionConflict
from domain.ledger import SNAPSHOT_EVERY, RelationshipLedger
from domain.relationship import Recorded, relationship_uuid
from domain.stored import StoredInteraction
from service.ledger_service import LedgerService
from service.schema import SCHEMA_VERSION, NotMigrated, index_recorded_keys, migrate
from service.store import open_ledger

RECORDED_AT = datetime.fromisoformat("2027-01-01T00:00:00+00:00")


def _event(n: int, relationship: str = "acme/bistro", **fields: Any) -> dict[str, Any]:
    customer = relationship.rsplit("/", 1)[-1]
    return {
        "event_id": f"crm-{n}",
        "source": "crm",
        "relationship_id": relationship,
        "occurred_at": f"2026-{1 + n // 28 % 12:02d}-{1 + n % 28:02d}T10:00:00Z",
        "kind": "purchase",
        "actor": "customer",
        "amount": f"{10 + n % 90}.00",
        "currency": "EUR",
        "outcome": "met",
        "parties": {"supplier": "acme", "customer": customer},
        **fields,
    }


def _items(events: list[dict[str, Any]]) -> list[Interaction]:
    return [parse_interaction(event, received_at=RECORDED_AT) for event in events]


@pytest.fixture
def service(store_url: str) -> Iterator[LedgerService]:
    opened = LedgerService.open(store_url)
    yield opened
    opened.close()


def test_a_key_reused_for_another_relationship_is_a_conflict(service: LedgerService) -> None:
    service.record(_items([_event(1), _event(2)]))
    [refused] = service.record(_items([_event(2, "acme/deli")]))
    assert isinstance(refused, InteractionConflict)
    assert str(refused) == "event_id: already recorded with other content at 'acme/bistro' #2"
    with pytest.raises(Exception, match="no relationship 'acme/deli'"):
        service.ledger.history("acme/deli")


def test_duplicates_and_conflicts_are_decided_the_same_after_a_restart(store_url: str) -> None:
    first = LedgerService.open(store_url)
    first.record(_items([_event(n) for n in range(1, 6)]))
    first.close()
    again = LedgerService.open(store_url)  # a fresh process knows nothing in memory
    outcomes = again.record(
        _items([_event(3), _event(4, amount="99.99"), _event(4, "acme/deli"), _event(6)])
    )
    again.close()
    assert outcomes[0] is Recorded.DUPLICATE
    assert isinstance(outcomes[1], InteractionConflict) and "#4" in str(outcomes[1])
    assert isinstance(outcomes[2], InteractionConflict)
    assert outcomes[3] is Recorded.RECORDED


def test_the_same_key_twice_in_one_batch_is_recorded_once(service: LedgerService) -> None:
    outcomes = service.record(_items([_event(1), _event(1), _event(1, amount="11.11")]))
    assert outcomes[:2] == [Recorded.RECORDED, Recorded.DUPLICATE]
    assert isinstance(outcomes[2], InteractionConflict)
    assert len(service.ledger.history("acme/bistro")) == 1


def test_a_long_relationship_is_decided_from_a_small_state(store_url: str) -> None:
    ledger = open_ledger(store_url)
    long_story = [_event(n, "acme/long") for n in range(1, 2 * SNAPSHOT_EVERY + 8)]
    short_story = [_event(n, "acme/short") for n in range(10_000, 10_008)]
    for start in range(0, len(long_story), 40):
        ledger.record_batch(_items(long_story[start : start + 40]))
    ledger.record_batch(_items(short_story))
    ledger.close()
    fresh = open_ledger(store_url)  # no cache: loaded from the store
    long_one = fresh.repository.get(relationship_uuid("acme/long"))
    short_one = fresh.repository.get(relationship_uuid("acme/short"))
    assert long_one.version == len(long_story)
    assert long_one.head == fresh.history("acme/long")[-1].chain_hash
    # Its state holds nothing that grows with its history...
    assert set(vars(long_one)) == set(vars(short_one))
    assert abs(len(_state(long_one)) - len(_state(short_one))) < 16
    # ...and it was loaded from a snapshot and the few events after it.
    snapshots = list(fresh.snapshots.get(relationship_uuid("acme/long"))) if fresh.snapshots else []
    assert snapshots and snapshots[-1].originator_version == 2 * SNAPSHOT_EVERY
    fresh.close()


def _state(aggregate: object) -> bytes:
    return orjson.dumps(vars(aggregate), default=str, option=orjson.OPT_SORT_KEYS)


def test_a_store_recorded_before_the_index_existed_is_migrated_into_it(store_url: str) -> None:
    service = LedgerService.open(store_url)
    retraction = _event(3, kind="retraction", ref="crm-2", actor="supplier", note="typo")
    for field in ("amount", "currency", "outcome", "parties"):
        retraction.pop(field)
    service.record(_items([_event(1), _event(2), retraction]))
    service.close()
    _forget_the_index(store_url)  # as the previous version left its stores
    with pytest.raises(NotMigrated, match=f"needs {SCHEMA_VERSION}: run relledger migrate"):
        LedgerService.open(store_url)
    migrate(store_url)
    service = LedgerService.open(store_url)
    again = service.record(_items([_event(1), _event(2, amount="1.00"), retraction]))
    twice = {**retraction, "event_id": "crm-4"}
    [refused] = service.record(_items([twice]))
    service.close()
    assert again[0] is Recorded.DUPLICATE
    assert isinstance(again[1], InteractionConflict)
    assert again[2] is Recorded.DUPLICATE
    assert "was already retracted at 'acme/bistro' #3" in str(refused)


def _forget_the_index(store_url: str) -> None:
    """Drop the key index and the snapshots and mark the store at schema version 3."""
    ledger: RelationshipLedger = open_ledger(store_url)
    datastore: Any = ledger.factory.datastore  # type: ignore[attr-defined]
    schema = getattr(datastore, "schema", None)
    prefix = f'"{schema}".' if schema else ""
    snapshots = f"{prefix}relledger_snapshots" if schema else "stored_snapshots"
    with datastore.transaction(commit=True) as cursor:
        cursor.execute(f"DROP TABLE {prefix}relledger_keys")
        cursor.execute(f"DELETE FROM {snapshots}")
        cursor.execute(f"UPDATE {prefix}relledger_schema SET version = 3")
    ledger.close()


_OFFERS = st.lists(
    st.tuples(
        st.integers(0, 5),  # relationship
        st.integers(0, 30),  # event number: repeats are redeliveries
        st.booleans(),  # reuse the key with other content: a conflict
        st.integers(0, 3),  # days earlier than its number says: late events
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=25, deadline=None)
@given(offers=_OFFERS, sizes=st.lists(st.integers(1, 12), min_size=1, max_size=20))
def test_batches_store_what_one_by_one_recording_stores(
    tmp_path_factory: pytest.TempPathFactory,
    offers: list[tuple[int, int, bool, int]],
    sizes: list[int],
) -> None:
    events = []
    for rel, n, altered, early in offers:
        event = _event(n, f"acme/r{rel}")
        if altered:
            event["amount"] = "1.23"
        day = datetime.fromisoformat(event["occurred_at"]).day
        event["occurred_at"] = event["occurred_at"].replace(
            f"-{day:02d}T", f"-{max(1, day - early):02d}T"
        )
        events.append(event)
    items = _items(events)
    folder = tmp_path_factory.mktemp("paths")
    one_by_one = _recorded(f"sqlite:///{folder}/single.db", items, [1] * len(items))
    batched = _recorded(f"sqlite:///{folder}/batched.db", items, sizes)
    assert batched == one_by_one


def _recorded(url: str, items: list[Interaction], sizes: list[int]) -> tuple[Any, ...]:
    migrate(url)
    ledger = open_ledger(url)
    outcomes: list[str] = []
    start, turn = 0, 0
    while start < len(items):
        size = sizes[turn % len(sizes)]
        outcomes += [str(o) for o in ledger.record_batch(items[start : start + size])]
        start, turn = start + size, turn + 1
    stored = [
        (s.relationship_id, s.version, json.dumps(s.record, sort_keys=True), s.late, s.chain_hash)
        for s in ledger.scan()
        if isinstance(s, StoredInteraction)
    ]
    ledger.close()
    return outcomes, sorted(stored)


def test_a_snapshot_failing_after_the_commit_leaves_the_batch_recorded(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two writers may take the same snapshot at once: the loser's failure comes after its
    events committed, and must not send the batch round again as duplicates."""
    ledger = open_ledger(store_url)
    assert ledger.snapshots is not None

    def taken_by_another_writer(*_: Any, **__: Any) -> None:
        raise IntegrityError("duplicate key value violates unique constraint")

    monkeypatch.setattr(ledger.snapshots, "put", taken_by_another_writer)
    story = _items([_event(n, "acme/busy") for n in range(1, SNAPSHOT_EVERY + 1)])
    outcomes = ledger.record_batch(story)
    assert set(outcomes) == {Recorded.RECORDED}
    assert len(ledger.history("acme/busy")) == SNAPSHOT_EVERY
    ledger.close()


def test_the_index_filled_from_the_log_in_batches_knows_every_recorded_key(
    store_url: str,
) -> None:
    ledger = open_ledger(store_url)
    first = ingest_file(ledger)
    ledger.close()
    _forget_the_index(store_url)
    ledger = open_ledger(store_url, create=True)  # the table back, empty
    assert index_recorded_keys(ledger, batch=100) == first.recorded  # late ones included
    again = ingest_file(ledger)  # every line offered a second time
    ledger.close()
    assert (again.recorded, again.conflicts, again.rejected) == (0, 0, 0)
    assert again.duplicates == first.recorded + first.duplicates


def test_the_bytes_stored_are_the_bytes_hashed(service: LedgerService, store_url: str) -> None:
    """One serialisation per event: each stored event holds its interaction's canonical
    bytes verbatim (not a second dump of the record), and the chain links those bytes."""
    events = [_event(n) for n in range(1, 8)] + [
        _event(9, "acme/cafe", kind="communication", amount=None, currency=None, outcome=None)
    ]
    events = [{k: v for k, v in event.items() if v is not None} for event in events]
    service.record(_items(events))
    heads: dict[str, str] = {}
    states = StoredRows(store_url).states()
    assert len(states) == len(events)
    for raw in states:
        interaction = orjson.loads(raw)["interaction"]
        canonical = canonical_json(interaction)
        assert canonical in raw
        previous = heads.get(interaction["relationship_id"], GENESIS)
        heads[interaction["relationship_id"]] = link_bytes(previous, canonical)
        assert orjson.loads(raw)["chain_hash"] == heads[interaction["relationship_id"]]


def test_a_fresh_process_appends_to_many_stored_relationships_in_one_batch(
    store_url: str,
) -> None:
    """A batch touching relationships the process has never seen: short ones are made from
    their events read together, a long one from its snapshot, new ones from nothing; the
    chains continue exactly as if each had been loaded alone."""
    short = [f"acme/c{n:03d}" for n in range(120)]
    before = [_event(n, short[n % 120]) for n in range(240)]  # two events each
    long = [_event(1000 + n, "acme/long") for n in range(SNAPSHOT_EVERY + 7)]
    first = LedgerService.open(store_url)
    first.record(_items(before + long))
    first.close()

    again = LedgerService.open(store_url)  # nothing in memory
    after = [
        _event(2000 + n, rid, occurred_at="2026-12-31T10:00:00Z")
        for n, rid in enumerate([*short, "acme/long", "acme/new"])
    ]
    one_by_one: list[str] = []
    find_one = again.ledger._find

    def spy(relationship_id: str, aggregate_id: Any) -> Any:
        one_by_one.append(relationship_id)
        return find_one(relationship_id, aggregate_id)

    again.ledger._find = spy  # type: ignore[method-assign]
    try:
        outcomes = again.record(_items(after))
        assert one_by_one == ["acme/long"]  # the only one with a snapshot to load from
        report = again.verify()
        assert outcomes == [Recorded.RECORDED] * len(after)
        assert report.intact and report.records == len(before) + len(long) + len(after)
        assert [one.version for one in again.ledger.history("acme/c007")] == [1, 2, 3]
        assert len(again.ledger.history("acme/long")) == SNAPSHOT_EVERY + 8
        assert [one.version for one in again.ledger.history("acme/new")] == [1]
        redelivered = again.record(_items(after))
        assert redelivered == [Recorded.DUPLICATE] * len(after)
    finally:
        again.close()
