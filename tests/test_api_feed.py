"""The change feed, the metrics and the stored-events listing, over a real `relledger serve`.

A reader follows `/v1/changes`, disconnects, the producers go on, and it resumes with
`Last-Event-ID`: what it holds at the end must be every relationship as it stands.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from api_server import Api
from conformance import DATA, EXPECTED

from service.keys import Role

LINES = (DATA / "events.jsonl").read_bytes().splitlines(keepends=True)
HALF = len(LINES) // 2


def _post(api: Api, lines: list[bytes]) -> dict[str, Any]:
    answer = api.post(b"".join(lines), "application/x-ndjson")
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def _follow(api: Api, wanted: set[str], last_event_id: str | None = None) -> list[dict[str, Any]]:
    """Read the feed until every relationship in `wanted` has arrived, then hang up."""
    headers = api.auth(Role.READER)
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    events: list[dict[str, Any]] = []
    seen: set[str] = set()
    deadline = time.monotonic() + 30
    with api.client.stream("GET", "/v1/changes", headers=headers, timeout=30) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        event: dict[str, Any] = {}
        for line in stream.iter_lines():
            if line.startswith("id: "):
                event["id"] = line.removeprefix("id: ")
            elif line.startswith("data: "):
                event["standing"] = json.loads(line.removeprefix("data: "))
            elif line == "" and event:
                events.append(event)
                seen.add(event["standing"]["relationship_id"])
                event = {}
                if wanted <= seen:
                    break
            assert time.monotonic() < deadline, f"still waiting for {wanted - seen}"
    return events


def _keys(lines: list[bytes]) -> list[tuple[str, str, str]]:
    items = [json.loads(line) for line in lines if line.strip()]
    return [(item["source"], item["event_id"], item["relationship_id"]) for item in items]


def test_a_reader_that_resumes_with_last_event_id_misses_nothing(api: Api) -> None:
    first_half = _keys(LINES[:HALF])
    _post(api, LINES[:HALF])
    first = _follow(api, {rid for _, _, rid in first_half})
    ids = [int(event["id"]) for event in first]
    assert ids == sorted(ids)  # in the order the read models applied them

    _post(api, LINES[HALF:])  # while the reader is away
    earlier = {(source, event_id) for source, event_id, _ in first_half}
    changed = {
        rid for source, event_id, rid in _keys(LINES[HALF:]) if (source, event_id) not in earlier
    }
    resumed = _follow(api, changed, last_event_id=first[-1]["id"])
    assert all(int(event["id"]) > ids[-1] for event in resumed)

    held = {event["standing"]["relationship_id"]: event["standing"] for event in first + resumed}
    assert set(held) == set(EXPECTED)
    for relationship_id, standing in held.items():
        path = "/v1/relationships/" + relationship_id.replace("/", "%2F")
        assert standing == api.get(path).json(), relationship_id
        assert standing["events"] == EXPECTED[relationship_id]["events"]


def test_the_feed_needs_a_reader_key_and_a_position(api: Api) -> None:
    assert api.client.get("/v1/changes").status_code == 401
    assert api.client.get("/v1/changes", headers=api.auth(Role.PRODUCER)).status_code == 403
    bad = api.get("/v1/changes", headers={"Last-Event-ID": "yesterday"})
    assert bad.status_code == 422 and bad.json()["error"] == "Invalid"


def test_metrics_count_what_producers_sent_and_report_the_lag(api: Api) -> None:
    def scraped() -> dict[str, float]:
        text = api.get("/metrics").text
        return {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line and not line.startswith("#")
        }

    line = LINES[0]
    assert api.post(line).status_code in (200, 201)  # recorded now, or by an earlier test
    before = scraped()
    changed = json.loads(line) | {"amount": "999.00"} if b'"amount"' in line else None
    assert api.post(line).status_code == 200  # a redelivery: a duplicate
    if changed is not None:
        assert api.post(json.dumps(changed).encode()).status_code == 409  # a conflict
    assert api.post(b'{"event_id": 1}').status_code == 422
    after = scraped()

    def grew(outcome: str) -> float:
        name = f'relledger_interactions_total{{outcome="{outcome}"}}'
        return after.get(name, 0) - before.get(name, 0)

    assert grew("duplicate") == 1 and grew("rejected") == 1
    assert grew("conflict") == (1 if changed is not None else 0)
    assert after["relledger_read_model_lag_events"] == 0
    assert after["relledger_quarantined_relationships"] == 0
    timed = 'relledger_request_seconds_count{method="GET",route="/metrics",status="200"}'
    assert after[timed] >= 1
    assert not any("acme%2F" in name or "acme/" in name for name in after)  # routes, not ids


def test_stored_events_page_through_the_chain(api: Api) -> None:
    path = "/v1/relationships/acme%2Fsteady/events"
    pages: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        page = api.get(f"{path}?offset={offset}&limit=7", Role.AUDITOR).json()
        pages.append(page)
        offset = page["next"]
    items = [item for page in pages for item in page["items"]]
    assert [item["version"] for item in items] == list(range(1, len(items) + 1))
    assert len(items) == pages[0]["total"] == EXPECTED["acme/steady"]["events"]
    chain = api.get("/v1/relationships/acme%2Fsteady/verify", Role.AUDITOR).json()
    assert chain["heads"]["acme/steady"] == items[-1]["chain_hash"]
    assert all(item["interaction"]["relationship_id"] == "acme/steady" for item in items)
    assert api.get(path, Role.READER).status_code == 403
    assert api.get("/v1/relationships/nobody/events", Role.AUDITOR).status_code == 404


def test_policies_name_the_live_one_with_its_rules(api: Api) -> None:
    [live] = api.get("/v1/policies").json()
    assert live["version"] == "v1" and live["live"] is True
    assert set(live["rules"]) >= {"trust", "phase", "stage", "fairness"}
    assert api.get("/v1/policies", Role.AUDITOR).status_code == httpx.codes.OK


def test_replay_under_a_known_policy_by_name_and_refuses_an_unknown_one(api: Api) -> None:
    path = "/v1/relationships/acme%2Fsteady/replay"
    live = api.get(f"{path}?policy=v1", Role.AUDITOR)
    assert live.status_code == 200 and live.json()["policy"] == "v1"
    assert live.json() == api.get(path, Role.AUDITOR).json()
    unknown = api.get(f"{path}?policy=v9", Role.AUDITOR)
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "no policy 'v9' in this store (the live one is 'v1')"
