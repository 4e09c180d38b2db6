"""Schemathesis against the API's own OpenAPI, over a real `relledger serve` process.

One SQLite store, migrated, with the conformance stories posted to it and an auditor and
a producer key. For every operation of `/openapi.json`, schemathesis generates requests
from the schema (a bounded number each, so the module runs in seconds) and checks:

* no answer is a 5xx, for data that fits the schema and for data that does not;
* every answer conforms to the schema: a documented status, content type, headers and
  body.

The read and audit routes get the auditor key (it may call all of them), `POST
/v1/interactions` the producer key. `/v1/changes` (an event stream that never ends) is
left to its own tests.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from api_server import running
from conformance import DATA
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from service.keys import Role
from service.ledger_service import LedgerService
from service.schema import migrate

EXAMPLES = 20  # per operation and test: enough to reach every documented status
PRODUCER_ROUTE = ("POST", "/v1/interactions")
KNOWN_ID = "acme/steady"  # a story's relationship, so the per-relationship routes also answer 200


def _served_operations() -> list[tuple[str, str]]:
    """Every operation in the app's OpenAPI, read at collection from a throwaway store, so a
    new route is tested without being listed here."""
    with tempfile.TemporaryDirectory(prefix="relledger-openapi-") as folder:
        url = f"sqlite:///{folder}/ledger.db"
        migrate(url)
        app = create_app(url)
        try:
            paths = app.openapi()["paths"]
        finally:
            app.state.shared.service.close()
    return [(method.upper(), path) for path, methods in paths.items() for method in methods]


SERVED = _served_operations()
# An event stream never ends, so no whole answer can be read and checked: /v1/changes is
# left to its own tests.
STREAMS = {("GET", "/v1/changes")}
OPERATIONS = [operation for operation in SERVED if operation not in STREAMS]
NO_INPUT = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}


def _cases(negative: bool = False) -> list[Any]:
    return [
        pytest.param(method, path, id=f"{method} {path}")
        for method, path in OPERATIONS
        if not (negative and (method, path) in NO_INPUT)
    ]


@dataclass
class Target:
    schema: schemathesis.BaseSchema
    base_url: str
    keys: dict[Role, str]

    def headers(self, method: str, path: str) -> dict[str, str]:
        role = Role.PRODUCER if (method, path) == PRODUCER_ROUTE else Role.AUDITOR
        return {"Authorization": f"Bearer {self.keys[role]}"}


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    folder = tmp_path_factory.mktemp("api-schema")
    url = f"sqlite:///{folder}/ledger.db"
    migrate(url)
    service = LedgerService.open(url)
    try:
        keys = {role: service.keys.create(role, f"schema-{role.value}") for role in Role}
    finally:
        service.close()
    with running(url, folder / "serve.log", "--max-future-skew", "3650") as server:
        lines = (DATA / "events.jsonl").read_bytes().splitlines(keepends=True)
        headers = {
            "Authorization": f"Bearer {keys[Role.PRODUCER]}",
            "Content-Type": "application/x-ndjson",
        }
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for start in range(0, len(lines), 500):
                answer = client.post(
                    "/v1/interactions",
                    content=b"".join(lines[start : start + 500]),
                    headers=headers,
                )
                assert answer.status_code == 200, answer.text
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json", timeout=30)
        yield Target(schema, server.url, keys)


def _run(
    target: Target,
    method: str,
    path: str,
    mode: GenerationMode,
    checks: list[Any],
) -> None:
    """`EXAMPLES` generated cases of one operation, each sent and checked."""
    operation = target.schema[path][method]
    headers = target.headers(method, path)
    strategy = operation.as_strategy(generation_mode=mode)
    if "{relationship_id}" in path and mode is GenerationMode.POSITIVE:
        known = operation.as_strategy(path_parameters={"relationship_id": KNOWN_ID})
        strategy = strategy | known

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same cases every run: a failure found stays found
        # no shrinking: a failing case is reported as found, and the run stays short
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(base_url=target.base_url, headers=headers, checks=checks)

    check()


def test_the_schema_is_the_one_served(target: Target) -> None:
    served = {
        (method.upper(), path)
        for path, operations in target.schema.raw_schema["paths"].items()
        for method in operations
    }
    assert served == set(SERVED)


# Negative data (values the schema does not allow) must still never be a 5xx; the
# operations without any parameter or body have no negative data to generate.
@pytest.mark.parametrize(("method", "path"), _cases(negative=True))
def test_no_server_error_on_invalid_data(target: Target, method: str, path: str) -> None:
    _run(target, method, path, GenerationMode.NEGATIVE, [not_a_server_error])


@pytest.mark.parametrize(("method", "path"), _cases())
def test_no_server_error(target: Target, method: str, path: str) -> None:
    _run(target, method, path, GenerationMode.POSITIVE, [not_a_server_error])


# Positive data only: schemathesis's negative-data checks are not run, since the API
# rightly answers 422 to values the schema cannot express (a timestamp without a zone,
# an unknown cursor), which those checks would report as "accepted positive data rejected".
@pytest.mark.parametrize(("method", "path"), _cases())
def test_statuses_and_headers_are_documented(target: Target, method: str, path: str) -> None:
    checks = [status_code_conformance, content_type_conformance, response_headers_conformance]
    _run(target, method, path, GenerationMode.POSITIVE, checks)


@pytest.mark.parametrize(("method", "path"), _cases())
def test_bodies_match_the_schema(target: Target, method: str, path: str) -> None:
    _run(target, method, path, GenerationMode.POSITIVE, [response_schema_conformance])
