"""The style rules are checked, not hoped for: ruff everywhere, mypy --strict on the code,
and the architecture's import rules (domain/ imports no other package of ours;
projections/ and consumers/ never import each other; service/ is below the faces, the
CLI in relledger/ and the HTTP API in api/, and never imports them; api/ never imports
the CLI)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ("domain", "projections", "consumers", "service", "relledger", "api")


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True)


def test_ruff_is_clean() -> None:
    result = _run(sys.executable, "-m", "ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    result = _run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def _imports(package: str) -> set[str]:
    found: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("domain", {"projections", "consumers", "service", "relledger", "api"}),
        ("projections", {"consumers", "service", "relledger", "api"}),
        ("consumers", {"projections", "service", "relledger", "api"}),
        ("service", {"relledger", "api"}),
        ("api", {"relledger"}),
    ],
)
def test_dependencies_point_inward(package: str, forbidden: set[str]) -> None:
    assert not (_imports(package) & forbidden)
