"""What the CLI prints, as a user sees it: `relledger` run in a real process.

Tables never cut an id or a rule: on a terminal (forced with rich's own
`TTY_COMPATIBLE=1`, or a real pseudo-terminal under `script`) narrower than the
content they fold; piped they are tab-separated with a header line; `--csv` is RFC
4180. Also `list --json`'s page shape, `stats` in the domain's order, money with its
currency's places, `show`'s parties and dates, `--db` after the command, `--version`,
help with no arguments, and shell completion.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conformance import DATA, EXPECTED, FAR_SKEW
from servers import unavailable

from relledger.render import money

SUPPLIER = "wholesale-distribution-central-europe"
CUSTOMER = "an-extraordinarily-long-customer-name-gmbh-und-co-kg"
LONG_ID = f"{SUPPLIER}/{CUSTOMER}"
YEN_ID = "tokyo-trading/kissa"


def _event(number: int, rel: str, day: int, **fields: object) -> str:
    item = {
        "event_id": f"order-2025-{number:06d}-{rel.split('/')[1]}",
        "source": "billing",
        "relationship_id": rel,
        "occurred_at": f"2025-02-{day:02d}T10:00:00Z",
        "actor": "customer",
        **fields,
    }
    return json.dumps(item)


def _extra_events() -> str:
    """A relationship with long ids (wider than any 80-column cell) and one in yen."""
    long_parties = {"supplier": SUPPLIER, "customer": CUSTOMER}
    yen_parties = {"supplier": "tokyo-trading", "customer": "kissa"}
    lines = [
        _event(1, LONG_ID, 1, kind="communication", parties=long_parties),
        _event(2, LONG_ID, 3, kind="purchase", amount="1234.567", currency="EUR", outcome="met"),
        _event(3, LONG_ID, 9, kind="purchase", amount="99.999", currency="EUR", outcome="failed"),
        _event(6, LONG_ID, 12, kind="purchase", amount="10", currency="EUR", outcome="failed"),
        _event(7, LONG_ID, 5, kind="communication"),  # told after day 12: late
        _event(4, YEN_ID, 2, kind="communication", parties=yen_parties),
        _event(5, YEN_ID, 4, kind="purchase", amount="125000", currency="JPY", outcome="met"),
    ]
    return "\n".join(lines) + "\n"


Run = Callable[..., subprocess.CompletedProcess[str]]


def relledger(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`relledger ARGS` in its own process, stdout and stderr piped (not a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "relledger", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "TTY_COMPATIBLE": "", **(env or {})},
        timeout=120,
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store with the conformance stories and the two above, projected."""
    folder = tmp_path_factory.mktemp("output")
    url = f"sqlite:///{folder}/ledger.db"
    extra = folder / "extra.jsonl"
    extra.write_text(_extra_events())
    assert relledger("migrate", "--db", url).returncode == 0
    ingested = relledger("ingest", "--db", url, *FAR_SKEW, str(DATA / "events.jsonl"), str(extra))
    assert ingested.returncode == 0, ingested.stderr
    return url


@pytest.fixture(scope="module")
def run(store: str) -> Run:
    def invoke(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return relledger(*args, env={"RELLEDGER_DB": store, **(env or {})})

    return invoke


def _ids(run: Run) -> list[str]:
    page = json.loads(run("list", "--limit", "500", "--json").stdout)
    return [item["relationship_id"] for item in page["items"]]


# -- tables: piped, on a terminal, as CSV ------------------------------------------------


def test_piped_tables_are_tab_separated_with_a_header_and_whole_ids(run: Run) -> None:
    listed = run("list", "--limit", "500")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split("\t") == [
        "relationship",
        "phase",
        "stage",
        "connection",
        "trust",
        "fairness",
        "status",
        "events",
    ]
    assert all(line.count("\t") == 7 for line in lines)
    assert [line.split("\t")[0] for line in lines[1:]] == _ids(run)  # what `cut -f1` gives
    assert LONG_ID in _ids(run)
    assert "…" not in listed.stdout and "\x1b[" not in listed.stdout
    assert not re.search("[─│┃━┏┡└]", listed.stdout)  # no box drawing

    history = run("trust-history", LONG_ID)
    rows = [line.split("\t") for line in history.stdout.splitlines()]
    assert rows[0] == ["occurred_at", "event_id", "rule", "before", "after", "delta", "policy"]
    assert {row[1] for row in rows[1:]} >= {f"order-2025-000003-{CUSTOMER}"}
    assert "loss:failed" in {row[2] for row in rows[1:]}


def test_a_narrow_terminal_folds_ids_and_never_cuts_them(run: Run) -> None:
    narrow = {"TTY_COMPATIBLE": "1", "COLUMNS": "60", "NO_COLOR": "1"}
    listed = run("list", "--limit", "500", env=narrow)
    assert listed.returncode == 0, listed.stderr
    assert "┏" in listed.stdout and "…" not in listed.stdout
    lines = _plain(listed.stdout).splitlines()
    assert max(len(line) for line in lines) <= 60
    body = [line for line in lines if line.startswith("│")]
    first_column = "".join(line.split("│")[1].strip() for line in body)
    assert first_column == "".join(_ids(run))  # every id whole, folded over lines

    history = run("trust-history", LONG_ID, env=narrow)
    assert "…" not in history.stdout
    body = [line for line in _plain(history.stdout).splitlines() if line.startswith("│")]
    cells = "".join(line.split("│")[2].strip() for line in body)
    assert f"order-2025-000003-{CUSTOMER}" in cells


def _plain(text: str) -> str:
    """Without the terminal's style sequences (NO_COLOR keeps bold and italics)."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def test_a_real_terminal_gets_the_table(run: Run, store: str) -> None:
    if shutil.which("script") is None:  # util-linux: a real pseudo-terminal
        unavailable("needs util-linux `script` for a pseudo-terminal", "a real terminal")
    command = f"{sys.executable} -m relledger --db {store} list --phase commitment"
    shown = subprocess.run(
        ["script", "-qec", command, "/dev/null"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80", "TTY_COMPATIBLE": ""},
        timeout=120,
    )
    assert shown.returncode == 0, shown.stdout
    assert "┃" in shown.stdout and "\t" not in shown.stdout
    body = [line for line in _plain(shown.stdout).splitlines() if line.startswith("│")]
    assert "".join(line.split("│")[1].strip() for line in body) == "".join(
        sorted(name for name, story in EXPECTED.items() if story["phase"] == "commitment")
    )


def test_csv_is_rfc_4180_and_refused_with_json(run: Run, store: str) -> None:
    listed = run("list", "--limit", "500", "--csv")
    assert listed.returncode == 0, listed.stderr
    raw = subprocess.run(
        [sys.executable, "-m", "relledger", "--db", store, "list", "--limit", "3", "--csv"],
        capture_output=True,
        timeout=120,
    ).stdout
    assert raw.count(b"\r\n") == 4 and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF ends
    rows = list(csv.reader(io.StringIO(listed.stdout)))
    assert rows[0][0] == "relationship" and [row[0] for row in rows[1:]] == _ids(run)

    risky = run("at-risk", "--since", "2025-02-05T00:00:00Z", "--csv")
    records = list(csv.DictReader(io.StringIO(risky.stdout)))
    assert records and all(float(record["net change"]) < 0 for record in records)
    causes = [record["main causes"] for record in records]
    assert any(", " in cause for cause in causes)  # a field with commas, quoted, kept whole
    assert causes == [
        line.split("\t")[4]
        for line in run("at-risk", "--since", "2025-02-05T00:00:00Z").stdout.splitlines()[1:]
    ]

    for command in (["list"], ["stats"], ["trust-history", "acme/steady"], ["checkpoints"]):
        both = run(*command, "--json", "--csv")
        assert both.returncode == 2, command
        assert both.stderr == "error: --json and --csv: choose one\n"
        assert both.stdout == ""


# -- answers ---------------------------------------------------------------------------


def test_list_json_carries_the_total_and_the_next_page(run: Run) -> None:
    everyone = len(EXPECTED) + 2
    page = json.loads(run("list", "--limit", "5", "--offset", "5", "--json").stdout)
    assert list(page) == ["items", "total", "offset", "next"]
    assert page["total"] == everyone and page["offset"] == 5 and page["next"] == 10
    assert len(page["items"]) == 5
    last = json.loads(run("list", "--offset", str(everyone - 1), "--json").stdout)
    assert len(last["items"]) == 1 and last["next"] is None
    piped = run("list", "--limit", "5")
    assert f"note: showing 1-5 of {everyone}; --offset 5 for the next page" in piped.stderr


def test_stats_counts_every_value_in_the_domains_order(run: Run) -> None:
    shown = run("stats")
    assert shown.returncode == 0, shown.stderr
    counts = [line.split("\t") for line in shown.stdout.split("\n\n")[0].splitlines()]
    assert counts[0] == ["dimension", "value", "relationships"]
    phases = [(value, int(n)) for dimension, value, n in counts[1:] if dimension == "phase"]
    assert [value for value, _ in phases] == [
        "awareness",
        "exploration",
        "expansion",
        "commitment",
        "dissolution",
    ]
    assert sum(n for _, n in phases) == len(EXPECTED) + 2
    assert 0 in {n for _, n in phases} or all(n > 0 for _, n in phases)
    stages = [value for dimension, value, _ in counts[1:] if dimension == "stage"]
    assert stages == ["emerging", "growth", "maturity", "decline"]
    as_csv = list(csv.reader(io.StringIO(run("stats", "--csv").stdout)))
    assert as_csv == counts


def test_show_gives_parties_currency_dates_late_and_money_in_its_places(run: Run) -> None:
    shown = run("show", LONG_ID)
    assert shown.returncode == 0, shown.stderr
    fields = dict(line.split("\t") for line in shown.stdout.splitlines())
    assert fields["relationship"] == LONG_ID
    assert fields["supplier"] == SUPPLIER and fields["customer"] == CUSTOMER
    view = json.loads(run("show", LONG_ID, "--json").stdout)
    assert fields["currency"] == view["currency"] == "EUR"
    assert fields["first event"] == view["first_event_at"] == "2025-02-01T10:00:00Z"
    assert fields["last event"] == view["last_event_at"] == "2025-02-12T10:00:00Z"
    assert fields["late"] == str(view["late_events"]) == "1"
    assert view["fairness"]["customer"]["received"] == "1234.567"  # JSON: the exact decimal
    assert "received 1234.57 EUR" in fields["customer totals"]  # the table: EUR's 2 places
    yen = dict(line.split("\t") for line in run("show", YEN_ID).stdout.splitlines())
    assert "received 125000 JPY" in yen["customer totals"]


def test_money_uses_the_currencys_minor_units() -> None:
    assert money("1234.5", "EUR") == "1234.50 EUR"
    assert money("3520.005", "EUR") == "3520.00 EUR"  # half to even, for display only
    assert money("125000", "JPY") == "125000 JPY"
    assert money("1.23456", "BHD") == "1.235 BHD"
    assert money("420.000", None) == "420.000"


def test_at_risk_refuses_since_after_until(run: Run) -> None:
    refused = run("at-risk", "--since", "2025-06-01T00:00:00Z", "--until", "2025-01-01T00:00:00Z")
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "--since" in refused.stderr
    assert "--until" in refused.stderr and refused.stdout == ""


# -- the command line ----------------------------------------------------------------------


def test_db_after_the_command_and_it_wins(run: Run, store: str, tmp_path: Path) -> None:
    elsewhere = f"sqlite:///{tmp_path}/none.db"
    after = relledger("list", "--db", store, "--json")
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["total"] == len(EXPECTED) + 2
    both = relledger("--db", elsewhere, "list", "--db", store, "--json")
    assert both.returncode == 0 and json.loads(both.stdout)["total"] == len(EXPECTED) + 2
    reverse = relledger("--db", store, "list", "--db", elsewhere)
    assert reverse.returncode == 3 and "none.db" in reverse.stderr
    nested = relledger("projections", "status", "--db", store, "--json")
    assert nested.returncode == 0 and json.loads(nested.stdout)["lag"] == 0
    assert not (tmp_path / "none.db").exists()


def test_no_arguments_prints_help_and_version_prints_the_version() -> None:
    bare = relledger()
    assert bare.returncode == 0
    assert "Usage: " in bare.stdout and "trust-history" in bare.stdout
    for group, command in (
        ("projections", "rebuild"),
        ("keys", "revoke"),
        ("signing-key", "new"),
        ("policy", "diff"),
    ):
        shown = relledger(group)
        assert shown.returncode == 0 and command in shown.stdout, group
    version = relledger("--version")
    assert version.returncode == 0
    from importlib.metadata import version as installed

    assert version.stdout == f"relledger {installed('relledger')}\n"


INSTALLED = Path(sys.executable).parent / "relledger"
"""The `relledger` script pip installed: completion keys on the program's name."""


def test_shell_completion_is_offered() -> None:
    assert "--install-completion" in relledger("--help").stdout
    script = subprocess.run(
        [str(INSTALLED), "--show-completion", "bash"], capture_output=True, text=True, timeout=60
    )
    assert script.returncode == 0, script.stderr
    assert "_RELLEDGER_COMPLETE" in script.stdout
    completed = subprocess.run(
        [str(INSTALLED)],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "_RELLEDGER_COMPLETE": "complete_bash",
            "COMP_WORDS": "relledger trust-h",
            "COMP_CWORD": "1",
        },
        timeout=60,
    )
    assert "trust-history" in completed.stdout
