"""The HTTP API over a real `relledger serve` process, on SQLite and on PostgreSQL.

One server per backend for the whole module: the conformance stories are posted to it
once, as NDJSON batches of 500, and every test then asks it over TCP.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from api_server import LIMIT, Api
from conformance import DATA, EXPECTED, STORY_EVENTS

from service.keys import Role

STEADY = "/v1/relationships/acme%2Fsteady"


@pytest.fixture(scope="module")
def loaded(api: Api) -> dict[str, Any]:
    """The conformance stories, posted as NDJSON batches of 500 lines; the summed answers."""
    lines = (DATA / "events.jsonl").read_bytes().splitlines(keepends=True)
    total: dict[str, Any] = {"recorded": 0, "late": 0, "duplicates": 0, "rejected": []}
    for start in range(0, len(lines), 500):
        answer = api.post(b"".join(lines[start : start + 500]), "application/x-ndjson")
        assert answer.status_code == 200, answer.text
        for name in total:
            total[name] += answer.json()[name]
    return total


def _item(relationship_id: str, event_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "source": "api-test",
        "relationship_id": relationship_id,
        "occurred_at": "2025-03-01T10:00:00Z",
        "kind": "purchase",
        "actor": "customer",
        "amount": "100.00",
        "currency": "EUR",
        "outcome": "met",
        "parties": {"supplier": "acme", "customer": "bistro"},
        **fields,
    }


def _body(value: Any) -> bytes:
    return json.dumps(value).encode()


def test_conformance_stories_posted_as_ndjson_stand_as_expected(
    api: Api, loaded: dict[str, Any]
) -> None:
    assert loaded["rejected"] == []
    assert loaded["recorded"] == STORY_EVENTS
    assert loaded["duplicates"] > 0 and loaded["late"] > 0
    for relationship_id, expected in EXPECTED.items():
        path = f"/v1/relationships/{quote(relationship_id, safe='')}"
        view = api.get(path).json()
        assert view["relationship_id"] == relationship_id
        for name in ("phase", "stage", "connection", "cycle", "events", "fairness"):
            assert view[name] == expected[name], (relationship_id, name)
        assert view["trust"] == pytest.approx(expected["trust"], abs=1e-3), relationship_id
        assert len(api.get(f"{path}/trust-history").json()) == expected["trust_changes"]
        phases = [change["to"] for change in api.get(f"{path}/phase-history").json()]
        assert phases == expected["phase_path"], relationship_id


ROUTES = [
    ("GET", STEADY, Role.READER),
    ("GET", f"{STEADY}/trust-history", Role.READER),
    ("GET", f"{STEADY}/phase-history", Role.READER),
    ("GET", "/v1/relationships", Role.READER),
    ("GET", "/v1/at-risk?since=2025-01-01T00:00:00Z", Role.READER),
    ("GET", "/v1/stats", Role.READER),
    ("GET", "/v1/projections/status", Role.READER),
    ("GET", "/v1/policies", Role.READER),
    ("GET", "/metrics", Role.READER),
    ("GET", f"{STEADY}/events?limit=5", Role.AUDITOR),
    ("GET", f"{STEADY}/replay?version=3", Role.AUDITOR),
    ("GET", f"{STEADY}/verify", Role.AUDITOR),
    ("GET", "/v1/verify", Role.AUDITOR),
    ("POST", "/v1/interactions", Role.PRODUCER),
]


@pytest.mark.parametrize(("method", "path", "needed"), ROUTES)
def test_role_matrix(
    api: Api, loaded: dict[str, Any], method: str, path: str, needed: Role
) -> None:
    # A redelivered story event: a producer's POST changes nothing (200, duplicate).
    body = (DATA / "events.jsonl").read_bytes().splitlines()[0]

    def call(headers: dict[str, str]) -> httpx.Response:
        return api.client.request(method, path, headers=headers, content=body)

    for headers in ({}, {"Authorization": "Bearer rl_nobody"}, {"Authorization": "Basic eDp5"}):
        answer = call(headers)
        assert answer.status_code == 401, (headers, answer.text)
        assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert answer.json()["error"] == "Unauthenticated"
    for role in Role:
        answer = call(api.auth(role))
        if role.allows(needed):
            assert answer.status_code == 200, (role, answer.text)
        else:
            assert answer.status_code == 403, (role, answer.text)
            assert answer.json()["error"] == "Forbidden"


def test_a_revoked_key_stops_at_once(api: Api) -> None:
    key = api.service.keys.create(Role.READER, "soon-revoked")
    headers = {"Authorization": f"Bearer {key}"}
    assert api.client.get("/v1/stats", headers=headers).status_code == 200
    api.service.keys.revoke("soon-revoked")
    assert api.client.get("/v1/stats", headers=headers).status_code == 401


def test_a_body_over_the_limit_is_413_by_content_length_before_it_is_sent(api: Api) -> None:
    address = urlsplit(api.server.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as conn:
        conn.sendall(
            b"POST /v1/interactions HTTP/1.1\r\nHost: test\r\n"
            + f"Authorization: Bearer {api.keys[Role.PRODUCER]}\r\n".encode()
            + b"Content-Type: application/x-ndjson\r\nContent-Length: 10000000000\r\n\r\n"
        )
        head = conn.recv(4096)
    assert head.startswith(b"HTTP/1.1 413"), head


def test_a_streamed_body_over_the_limit_is_413(api: Api) -> None:
    line = _body(_item("big/one", "x")) + b"\n"

    def chunks() -> Iterator[bytes]:
        for _ in range(LIMIT // len(line) + 10):
            yield line

    headers = {**api.auth(Role.PRODUCER), "Content-Type": "application/x-ndjson"}
    answer = api.client.post("/v1/interactions", content=chunks(), headers=headers)
    assert answer.status_code == 413
    assert answer.json()["error"] == "Rejected"
    assert api.get("/v1/relationships/big%2Fone").status_code == 404


@pytest.mark.parametrize("body", [b"not json", b"", b"[1, 2", b'{"a": 1} x', b"\xff\xfe"])
def test_a_body_that_is_not_json_is_422(api: Api, body: bytes) -> None:
    answer = api.post(body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "Rejected"
    assert answer.json()["field"] in {"json", "event_id"}


def test_a_single_object_is_201_then_200_and_its_refusals_422_or_409(api: Api) -> None:
    first = _item("single/one", "s1")
    answer = api.post(_body(first))
    assert (answer.status_code, answer.json()) == (201, {"outcome": "recorded"})
    assert api.get("/v1/relationships/single%2Fone").json()["events"] == 1
    assert api.post(_body(first)).status_code == 200
    conflict = api.post(_body({**first, "amount": "999.00"}))
    assert conflict.status_code == 409, conflict.text
    assert conflict.json()["error"] == "Conflict"
    assert conflict.json()["field"] == "event_id"
    refused = api.post(_body(_item("single/one", "s2", kind="gossip")))
    assert refused.status_code == 422
    assert (refused.json()["error"], refused.json()["field"]) == ("Rejected", "kind")
    assert api.get("/v1/relationships/single%2Fone").json()["events"] == 1


def test_a_json_array_is_a_batch_numbered_from_1(api: Api) -> None:
    items = [_item("array/one", "a1"), {"event_id": "broken"}, _item("array/one", "a2")]
    answer = api.post(_body(items))
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert (found["recorded"], found["duplicates"], found["conflicts"]) == (2, 0, 0)
    assert [r["item"] for r in found["rejected"]] == [2]


def test_ids_with_slashes_and_percent_signs_are_one_segment(api: Api) -> None:
    odd = "pct/50% off/?#x"
    assert api.post(_body(_item(odd, "p1"))).status_code == 201
    path = f"/v1/relationships/{quote(odd, safe='')}"
    assert api.get(path).json()["relationship_id"] == odd
    assert len(api.get(f"{path}/trust-history").json()) == 1
    assert api.get(f"{path}/verify", Role.AUDITOR).json()["records"] == 1
    unknown = api.get("/v1/relationships/pct/50")
    assert unknown.status_code == 404 and unknown.json()["error"] == "NotFound"


def test_etag_and_if_none_match(api: Api) -> None:
    assert api.post(_body(_item("etag/one", "t1"))).status_code == 201
    path = "/v1/relationships/etag%2Fone"
    tag = api.get(path).headers["ETag"]
    assert tag.startswith('W/"')
    unchanged = api.get(path, headers={"If-None-Match": tag})
    assert (unchanged.status_code, unchanged.content) == (304, b"")
    assert api.post(_body(_item("etag/one", "t2", occurred_at="2025-03-02T10:00:00Z"))).is_success
    changed = api.get(path, headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["ETag"] != tag


def test_four_producers_posting_overlapping_batches_record_each_interaction_once(
    api: Api,
) -> None:
    items = [
        _item(f"race/{n % 10}", f"r{n}", occurred_at=f"2025-04-01T10:{n // 10:02d}:00Z")
        for n in range(200)
    ]
    answers: list[dict[str, Any]] = []

    def produce(start: int) -> None:
        with httpx.Client(base_url=api.server.url, timeout=60) as client:
            for at in range(0, 200, 25):
                batch = items[(start + at) % 200 :][:25] or items[:25]
                lines = b"".join(_body(item) + b"\n" for item in batch)
                headers = {**api.auth(Role.PRODUCER), "Content-Type": "application/x-ndjson"}
                answer = client.post("/v1/interactions", content=lines, headers=headers)
                answers.append(answer.json())

    threads = [threading.Thread(target=produce, args=(n * 50,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(answer["rejected"] == [] for answer in answers), answers
    assert sum(answer["recorded"] for answer in answers) == 200
    sent = sum(answer["recorded"] + answer["duplicates"] for answer in answers)
    assert sum(answer["duplicates"] for answer in answers) == sent - 200
    for n in range(10):
        assert api.get(f"/v1/relationships/race%2F{n}").json()["events"] == 20


def test_listing_pages_through_every_relationship_once(api: Api, loaded: dict[str, Any]) -> None:
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = api.get("/v1/relationships", params=params).json()
        assert list(page) == ["items", "total", "offset", "next"]  # list --json's shape
        assert page["offset"] == len(seen)
        seen += [item["relationship_id"] for item in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == page["total"]
    chosen = api.get("/v1/relationships", params={"phase": "commitment", "sort": "trust"}).json()
    assert chosen["items"] and {item["phase"] for item in chosen["items"]} == {"commitment"}
    trusts = [item["trust"] for item in chosen["items"]]
    assert trusts == sorted(trusts)
    huge = base64.urlsafe_b64encode(b"o99999999999999999999").decode()  # past 64 bits
    for bad in ({"phase": "bliss"}, {"cursor": "nonsense!"}, {"limit": 0}, {"cursor": huge}):
        answer = api.get("/v1/relationships", params=bad)
        assert answer.status_code == 422 and answer.json()["error"] == "Invalid", bad


def test_audit_routes_answer_as_the_cli_does(api: Api, loaded: dict[str, Any]) -> None:
    standing = api.get(STEADY).json()
    replayed = api.get(f"{STEADY}/replay", Role.AUDITOR).json()
    assert replayed.pop("verified") is True and replayed == standing
    early = api.get(f"{STEADY}/replay", Role.AUDITOR, params={"version": 3}).json()
    assert early["events"] == 3
    as_of = api.get(f"{STEADY}/replay?as_of=2000-01-01T00:00:00Z", Role.AUDITOR)
    assert as_of.status_code == 404 and "did not exist yet" in as_of.json()["detail"]
    beyond = api.get(f"{STEADY}/replay", Role.AUDITOR, params={"version": 10_000})
    assert beyond.status_code == 422 and "beyond its last record" in beyond.json()["detail"]
    naive = api.get(f"{STEADY}/replay?as_of=2025-01-01T00:00:00", Role.AUDITOR)
    assert naive.status_code == 422
    report = api.get("/v1/verify", Role.AUDITOR).json()
    assert report["intact"] is True and report["breaks"] == []
    assert report["relationships"] >= len(EXPECTED)
    one = api.get(f"{STEADY}/verify", Role.AUDITOR).json()
    assert (
        one["relationships"] == 1 and one["heads"]["acme/steady"] == report["heads"]["acme/steady"]
    )
    assert api.get("/v1/relationships/nobody%2Fhere/verify", Role.AUDITOR).status_code == 404


def test_read_model_routes(api: Api, loaded: dict[str, Any]) -> None:
    status = api.get("/v1/projections/status").json()
    assert status["lag"] == 0 and status["position"] == status["head"] > 0
    stats = api.get("/v1/stats", params={"outliers": 3}).json()
    assert (
        sum(stats["distribution"]["phase"].values()) == api.get("/v1/relationships").json()["total"]
    )
    assert len(stats["fairness_outliers"]) == 3
    risky = api.get("/v1/at-risk", params={"since": "2025-01-01T00:00:00Z", "limit": 1}).json()
    assert len(risky) == 1 and risky[0]["net_change"] < 0 and risky[0]["causes"]
    assert api.get("/v1/at-risk", params={"since": "2025-01-01T00:00:00"}).status_code == 422


def test_health_readiness_and_openapi_need_no_key(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["lag"] == 0
    schema = api.client.get("/openapi.json").json()
    assert schema["openapi"].startswith("3.1")
    assert "/v1/relationships/{relationship_id}/replay" in schema["paths"]
    assert api.client.get("/docs").status_code == 200


def test_listing_by_party(api: Api, loaded: dict[str, Any]) -> None:
    steady = api.get("/v1/relationships?party=steady").json()
    assert [item["relationship_id"] for item in steady["items"]] == ["acme/steady"]
    assert steady["items"][0]["parties"] == {"supplier": "acme", "customer": "steady"}
    every = api.get("/v1/relationships?limit=10000").json()["items"]
    of_acme = api.get("/v1/relationships?party=acme&limit=10000").json()
    assert {item["relationship_id"] for item in of_acme["items"]} == {
        item["relationship_id"]
        for item in every
        if item["parties"] is not None and "acme" in item["parties"].values()
    }
    assert of_acme["total"] >= len(EXPECTED)  # acme supplies every story
    assert api.get("/v1/relationships?party=nobody").json() == {
        "items": [],
        "total": 0,
        "offset": 0,
        "next": None,
    }
