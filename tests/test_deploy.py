"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

Nothing here can start a container, so the checks are structural: the services the
deployment needs exist and are wired as documented, and every relledger command the
compose file runs parses as a real CLI command with real options.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from relledger.cli import app

ROOT = Path(__file__).parents[1]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
OURS = {name: s for name, s in SERVICES.items() if s.get("image") == "relledger:latest"}


def _parse(argv: list[str]) -> Any:
    """Parse `relledger ARGV` exactly as the CLI would, without running the command.

    (Typer's own click objects: `make_context` parses and validates, `invoke` would run.)
    """
    group: Any = typer.main.get_command(app)
    root = group.make_context(
        "relledger", ["--db", "sqlite:///x.db", *argv], resilient_parsing=False
    )
    name, command, rest = group.resolve_command(root, [*root._protected_args, *root.args])
    assert command is not None, argv
    if hasattr(command, "resolve_command"):  # a command group, e.g. `projections`
        name, command, rest = command.resolve_command(root, rest)
        assert command is not None, argv
    return command.make_context(name, rest, parent=root)


def test_the_deployment_has_kafka_postgres_migrate_consumers_a_projector_and_the_api() -> None:
    kafka = SERVICES["kafka"]
    assert kafka["image"].startswith("apache/kafka:")  # the official image
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    assert SERVICES["postgres"]["image"].startswith("postgres:")
    consumer = SERVICES["consumer"]
    assert consumer["command"][0] == "consume" and consumer["deploy"]["replicas"] == 2
    assert SERVICES["projector"]["command"] == ["project", "--follow"]
    assert SERVICES["migrate"]["command"] == ["migrate"]
    api = SERVICES["api"]
    assert api["command"][0] == "serve" and api["deploy"]["replicas"] == 2
    assert "0.0.0.0" in api["command"]  # reachable from outside its container
    for name in ("consumer", "projector", "api"):
        assert OURS[name]["environment"]["RELLEDGER_DB"].startswith("postgresql://")
        assert OURS[name]["stop_signal"] == "SIGTERM"  # finish the batch, leave the group
        assert SERVICES[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )


@pytest.mark.parametrize("service", sorted(OURS))
def test_every_command_compose_runs_is_a_real_cli_command(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in OURS[service]["environment"].items():  # e.g. the broker address
        monkeypatch.setenv(name, value)
    context = _parse(OURS[service]["command"])
    assert context.command.name == OURS[service]["command"][0]


def test_an_invented_command_or_option_would_be_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELLEDGER_KAFKA", raising=False)
    with pytest.raises(Exception, match="No such command"):
        _parse(["follow-forever"])
    with pytest.raises(Exception, match="No such option"):
        _parse(["project", "--folow"])
    with pytest.raises(Exception, match=r"Missing .*bootstrap.servers"):
        _parse(["consume", "--topic", "interactions"])


def test_the_image_installs_every_package_and_runs_the_cli() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]
    for top in {package.split(".")[0] for package in packages}:
        assert f"COPY {top} ./{top}" in dockerfile, top
    assert 'ENTRYPOINT ["relledger"]' in dockerfile
