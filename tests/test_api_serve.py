"""`relledger serve` as a process (refusing an open address without keys, stopping on
SIGTERM), and what only an in-process app can show (an unexpected error's answer)."""

from __future__ import annotations

import subprocess
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_server import free_port, running, serve_command
from conformance import DATA, FAR_SKEW

from api.app import create_app
from api.errors import STATUSES, status_of
from domain import errors
from service.keys import Role
from service.ledger_service import LedgerService


def test_serve_refuses_an_open_address_without_an_active_key(store_url: str) -> None:
    command = serve_command(store_url, "--host", "0.0.0.0", "--port", str(free_port()))
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().count("\n") == 0
    assert "relledger keys create" in done.stderr


def test_sigterm_finishes_the_request_in_flight_and_exits_0(store_url: str, tmp_path: Path) -> None:
    service = LedgerService.open(store_url)
    key = service.keys.create(Role.PRODUCER, "bot")
    service.close()
    answers: list[httpx.Response] = []
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"}
    body = (DATA / "events.jsonl").read_bytes()
    with running(store_url, tmp_path / "serve.log", *FAR_SKEW) as server:

        def post() -> None:
            url = f"{server.url}/v1/interactions"
            answers.append(httpx.post(url, content=body, headers=headers, timeout=60))

        poster = threading.Thread(target=post)
        poster.start()
        time.sleep(0.2)
        assert server.stop() == 0, server.output()
        poster.join()
    assert answers[0].status_code == 200 and answers[0].json()["rejected"] == []


def _client(app: object, **options: bool) -> Any:
    with warnings.catch_warnings():  # starlette's notice about its httpx transport
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    return TestClient(app, **options)  # type: ignore[arg-type]


def test_every_error_family_has_one_status() -> None:
    families = [
        errors.Rejected,
        errors.Invalid,
        errors.NotFound,
        errors.Conflict,
        errors.Unavailable,
        errors.Damaged,
        errors.Unauthenticated,
        errors.Forbidden,
    ]
    assert [status_of(family("x")) for family in families] == [
        422, 422, 404, 409, 503, 500, 401, 403,
    ]  # fmt: skip
    assert status_of(errors.InteractionConflict("event_id", "reused")) == 409
    assert status_of(errors.ContractViolation("kind", "unknown")) == 422
    assert STATUSES[-1] == (errors.LedgerError, 500)


def test_an_unexpected_error_is_a_500_with_one_line(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(store_url)
    service = app.state.shared.service
    key = service.keys.create(Role.READER, "reader")

    def broken(outliers: int) -> None:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(service, "stats", broken)
    with _client(app, raise_server_exceptions=False) as client:
        answer = client.get("/v1/stats", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 500
    assert answer.json() == {
        "error": "Unexpected",
        "detail": "unexpected RuntimeError (a bug: see the server log)",
    }


def test_readiness_is_503_when_the_store_fails(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(store_url)
    service = app.state.shared.service

    def unreachable(limit: int) -> None:
        raise errors.Unavailable("the store did not answer")

    with _client(app) as client:
        assert client.get("/readyz").status_code == 200
        monkeypatch.setattr(service, "status", unreachable)
        answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json() == {"error": "Unavailable", "detail": "the store did not answer"}
