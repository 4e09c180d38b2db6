"""`--json` everywhere: every command that answers with something a program may want
takes `--json`, and what it prints parses and says what the text says."""

from __future__ import annotations

import json
from typing import Any

import typer.main
from cli_process import relledger
from conformance import DATA, FAR_SKEW

from relledger.cli import app
from service.schema import SCHEMA_VERSION

WITHOUT_JSON = {
    "serve": "a server: it answers over HTTP",
    "consume": "always logs JSON (--json-logs) and ends with a JSON summary",
}


def _commands(command: Any, path: tuple[str, ...] = ()) -> dict[str, Any]:
    if hasattr(command, "list_commands"):
        found: dict[str, Any] = {}
        for name in command.list_commands(None):
            found.update(_commands(command.get_command(None, name), (*path, name)))
        return found
    return {" ".join(path): command}


def test_every_command_takes_json() -> None:
    commands = _commands(typer.main.get_command(app))
    assert len(commands) > 25
    lacking = [
        name
        for name, command in commands.items()
        if name not in WITHOUT_JSON
        and "--json" not in {opt for param in command.params for opt in getattr(param, "opts", [])}
    ]
    assert lacking == []


def test_migrate_project_and_keys_answer_in_json(empty_store_url: str) -> None:
    first = relledger(empty_store_url, "migrate", "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {
        "store": json.loads(first.stdout)["store"],
        "before": None,
        "after": SCHEMA_VERSION,
        "rebuilt": None,
    }
    again = json.loads(relledger(empty_store_url, "migrate", "--json").stdout)
    assert again["before"] == again["after"] == SCHEMA_VERSION

    ingested = relledger(empty_store_url, "ingest", *FAR_SKEW, str(DATA / "events.jsonl"), "--json")
    assert ingested.returncode == 0, ingested.stderr
    caught_up = relledger(empty_store_url, "project", "--json")
    assert caught_up.returncode == 0, caught_up.stderr
    report = json.loads(caught_up.stdout)
    assert report["position"] == report["head"] > 0 and report["events"] == 0  # ingest did it

    created = relledger(
        empty_store_url, "keys", "create", "--role", "reader", "--name", "bi", "--json"
    )
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert (key["name"], key["role"], key["revoked_at"]) == ("bi", "reader", None)
    assert key["key"] and key["key_id"]
    revoked = json.loads(relledger(empty_store_url, "keys", "revoke", "bi", "--json").stdout)
    assert revoked["key_id"] == key["key_id"] and revoked["revoked_at"] is not None
    assert "key" not in revoked
