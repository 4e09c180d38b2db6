"""The documentation stands on its own in a clone, and what it shows works.

A reader of README.md or docs/ has only the repository: no notes from elsewhere, no
links that lead nowhere, no command that the CLI does not have. These checks read every
markdown file of the repository and fail naming the file and line, so a renamed
command, a moved heading or a deleted file breaks the suite, not a reader's afternoon.
The runnable pages (the audit walk-through, the producers' sample file) are run, and the
operations page must name every environment variable the code reads.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer

from domain.kinds import Kind
from relledger.cli import app

ROOT = Path(__file__).parents[1]
SKIP_DIRS = {".git", ".venv", "node_modules", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
FORBIDDEN = ("../shared", "DESIGN.md", "design note", "the issue", "the brief")
"""What points outside the repository, or at notes a reader of a clone cannot open."""


CONFORMANCE = ROOT / "tests" / "data"
"""The independent implementation's conformance stories, kept byte for byte as they were
published (figures and notes alike): not relledger's documentation to edit."""


def _markdown_files() -> list[Path]:
    found = []
    for path in sorted(ROOT.rglob("*.md")):
        parts = path.relative_to(ROOT).parts
        if any(p in SKIP_DIRS or p.endswith(".egg-info") for p in parts):
            continue
        if path.is_relative_to(CONFORMANCE):
            continue
        found.append(path)
    return found


MARKDOWN = _markdown_files()
NAMES = [str(path.relative_to(ROOT)) for path in MARKDOWN]
FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _lines(path: Path) -> Iterator[tuple[int, str, bool]]:
    """(line number, text, inside a fenced code block) for every line of `path`."""
    fenced = False
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        yield number, line, fenced


def test_the_markdown_files_are_found() -> None:
    assert {"README.md", "docs/operations.md", "docs/glossary.md"} <= set(NAMES)
    assert len(MARKDOWN) >= 15


# -- nothing from outside the repository ------------------------------------------------


@pytest.mark.parametrize("path", MARKDOWN, ids=NAMES)
def test_no_reference_to_notes_outside_the_repository(path: Path) -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {phrase!r}"
        for number, line, _ in _lines(path)
        for phrase in FORBIDDEN
        if phrase.lower() in line.lower()
    ]
    assert not found, "\n".join(found)


# -- links ----------------------------------------------------------------------------------


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = CODE_SPAN.sub(lambda m: m.group(2), heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def _anchors(path: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for _, line, fenced in _lines(path):
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading and not fenced:
            slug = _slug(heading.group(1))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            anchors.add(slug if count == 0 else f"{slug}-{count}")
    return frozenset(anchors)


def _links(path: Path) -> Iterator[tuple[int, str]]:
    for number, line, fenced in _lines(path):
        if fenced:
            continue
        for match in LINK.finditer(CODE_SPAN.sub("", line)):
            yield number, match.group(1)


@pytest.mark.parametrize("path", MARKDOWN, ids=NAMES)
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(path: Path) -> None:
    broken = []
    for number, target in _links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(ROOT)}:{number}: {target}"
        if not resolved.exists():
            broken.append(f"{where}: no such file")
        elif not resolved.is_relative_to(ROOT):
            broken.append(f"{where}: outside the repository")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{where}: no heading with that anchor")
    assert not broken, "\n".join(broken)


def test_the_link_checker_would_see_a_broken_link(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[a](missing.md) [b](#title) [c](#nowhere) `[d](x.md)`\n")
    links = list(_links(page))
    assert links == [(3, "missing.md"), (3, "#title"), (3, "#nowhere")]
    assert _anchors(page) == {"title"}
    assert _slug("Publishing to relledger (Kafka)") == "publishing-to-relledger-kafka"


# -- commands -------------------------------------------------------------------------------

GLOBAL_OPTIONS = {"--db": True, "--debug": False}
"""The root's options a command line may carry before the command (True: takes a value)."""


@cache
def _cli() -> Any:
    return typer.main.get_command(app)


def _options(command: Any) -> set[str]:
    names = {"--help", "--db"}
    for param in command.params:
        names.update(name for name in param.opts if name.startswith("--"))
        names.update(name for name in param.secondary_opts if name.startswith("--"))
    return names


def _mentions(path: Path) -> Iterator[tuple[int, str]]:
    """Every `relledger ...` command line in a code span or block, up to its end."""
    for number, line, fenced in _lines(path):
        pieces = [line] if fenced else [m.group(2) for m in CODE_SPAN.finditer(line)]
        for piece in pieces:
            for match in re.finditer(r"(?<![\w./-])relledger((?:\s+[^\s|;&#)`]+)*)", piece):
                yield number, match.group(1)


def check_command_line(words: list[str]) -> str | None:
    """Why `relledger WORDS` is not a real command line (None if it is)."""
    words = list(words)
    while words and words[0] in GLOBAL_OPTIONS:
        takes_value = GLOBAL_OPTIONS[words.pop(0)]
        if takes_value and words:
            words.pop(0)
    if not words or not re.fullmatch(r"[a-z][a-z-]*", words[0]):
        return None  # `relledger --version`, `relledger COMMAND`: no command named
    group = _cli()
    command = group.commands.get(words.pop(0))
    if command is None:
        return "no such command"
    if hasattr(command, "commands") and words and re.fullmatch(r"[a-z][a-z-]*", words[0]):
        sub = command.commands.get(words.pop(0))
        if sub is None:
            return "no such subcommand"
        command = sub
    known = _options(command)
    for word in words:
        option = word.split("=", 1)[0].strip("[]")
        if re.fullmatch(r"--[a-z][a-z-]*", option) and option not in known:
            return f"no option {option}"
    return None


@pytest.mark.parametrize("path", MARKDOWN, ids=NAMES)
def test_every_relledger_command_in_code_is_a_real_command(path: Path) -> None:
    wrong = []
    for number, rest in _mentions(path):
        try:
            words = shlex.split(rest, comments=False)
        except ValueError:
            words = rest.split()
        problem = check_command_line(words)
        if problem:
            wrong.append(f"{path.relative_to(ROOT)}:{number}: relledger{rest}: {problem}")
    assert not wrong, "\n".join(wrong)


def test_the_command_checker_would_see_an_invented_command_or_option() -> None:
    assert check_command_line(["--db", "sqlite:///x.db", "verify", "--json"]) is None
    assert check_command_line(["projections", "rebuild", "--policy", "v2.toml"]) is None
    assert check_command_line(["--version"]) is None
    assert check_command_line(["follow"]) == "no such command"
    assert check_command_line(["projections", "rebild"]) == "no such subcommand"
    assert check_command_line(["list", "--phaze", "commitment"]) == "no option --phaze"


# -- what the pages show works --------------------------------------------------------------

SAMPLE = ROOT / "examples" / "interactions.jsonl"
MINUS = "\N{MINUS SIGN}"  # the glossary prints signs as a reader writes them


def _relledger(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "relledger", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_the_producers_sample_uses_every_kind_and_ingests_cleanly(tmp_path: Path) -> None:
    items = [json.loads(line) for line in SAMPLE.read_text().splitlines()]
    assert {item["kind"] for item in items} == {kind.value for kind in Kind}
    store = f"sqlite:///{tmp_path}/sample.db"
    assert _relledger("--db", store, "migrate", cwd=tmp_path).returncode == 0
    ingest = _relledger("--db", store, "ingest", str(SAMPLE), cwd=tmp_path)
    assert ingest.returncode == 0, ingest.stderr
    assert ingest.stdout.startswith(
        f"recorded {len(items)} (late 0), duplicates 0, conflicts 0, rejected 0"
    ), ingest.stdout
    # The glossary's worked example of the fairness signs is what the sample gives.
    glossary = (ROOT / "docs" / "glossary.md").read_text()
    for relationship in ("acme/bistro", "acme/corner-cafe"):
        shown = _relledger("--db", store, "show", relationship, "--json", cwd=tmp_path)
        fairness = json.loads(shown.stdout)["fairness"]
        index = f"{fairness['index']:+.4f}".replace("-", MINUS)
        row = f"| `{relationship}` | {index} | `{fairness['status']}` | "
        assert row in glossary, row
        gap = glossary.split(row, 1)[1].split(" |", 1)[0].replace(MINUS, "-")
        assert Decimal(gap) == Decimal(fairness["value_gap"]), (relationship, gap)


def _bash_blocks(path: Path) -> list[str]:
    blocks: list[str] = []
    current: list[str] | None = None
    for line in path.read_text().splitlines():
        if current is None and line.strip() == "```bash":
            current = []
        elif current is not None and line.strip() == "```":
            blocks.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def test_the_audit_walkthrough_runs_as_printed_and_finds_the_tamper(tmp_path: Path) -> None:
    script = "\n".join(_bash_blocks(ROOT / "docs" / "audit-walkthrough.md"))
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("RELLEDGER_DB", None)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "26 records in 2 relationships: intact" in output
    assert "the ledger (26 records) extends the checkpoint of 26 records" in output
    assert "is record 5 of the checkpoint of 26 records" in output
    # After the edit: both checks name the record, and exit 1.
    assert "BROKEN acme/bistro #5: content does not match its hash" in output
    assert "first break: acme/bistro #5: content does not match its hash" in output
    assert output.count("verify exited 1") == 2
    # The proof taken before still checks offline (it is what was signed).
    assert output.count("is record 5 of the checkpoint of 26 records") == 2


# -- every environment variable is documented -----------------------------------------------

CODE_DIRS = ("domain", "projections", "consumers", "service", "relledger", "api", "bench", "tests")
ENV_READ = re.compile(
    r"""(?:environ\.get\(|getenv\(|environ\[|envvar=)\s*["']([A-Z][A-Z0-9_]+)["']"""
    r"""|^[A-Z_]*ENV[A-Z_]*\s*=\s*["']([A-Z][A-Z0-9_]+)["']""",
    re.MULTILINE,
)


SYSTEM_VARIABLES = {"PATH"}
"""The operating system's, read to run programs, not to configure relledger."""


def _variables_read() -> dict[str, str]:
    found: dict[str, str] = {}
    for folder in CODE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for match in ENV_READ.finditer(path.read_text()):
                name = match.group(1) or match.group(2)
                if name in SYSTEM_VARIABLES:
                    continue
                found.setdefault(name, str(path.relative_to(ROOT)))
    return found


def test_operations_names_every_environment_variable_the_code_reads() -> None:
    read = _variables_read()
    assert {"RELLEDGER_DB", "RELLEDGER_KAFKA", "RELLEDGER_SESSION_SECRET"} <= set(read)
    documented = (ROOT / "docs" / "operations.md").read_text()
    missing = [
        f"{name} (read in {where})" for name, where in read.items() if f"`{name}`" not in documented
    ]
    assert not missing, "not in docs/operations.md: " + ", ".join(missing)
