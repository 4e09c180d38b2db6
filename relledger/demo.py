"""`relledger demo`: a realistic data set, ingested and projected, then the story it tells.

The demo only ever writes to a store of its own (`service.demo_store`): with no store
named, `./relledger-demo.db`, never the default `relledger.db` a real installation
uses; a named store must be new or hold only a demo's data. Run again on a store that
holds a demo already, it records nothing and shows what is there (a second data set
with another seed would collide with the first one's event ids, as conflicts), and
says how to start afresh. Its closing hints are commands that work as printed: they
name the demo's store (unless it came from RELLEDGER_DB, which the next command sees
too) and real relationship ids.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from projections import queries
from relledger import render
from relledger.cli_read import project_now
from relledger.simulate import SIMULATED_HISTORY, simulate
from service.demo_store import DEMO_FILE, check_demo_store
from service.ledger_service import LedgerService
from service.schema import migrate
from service.store import ENV_VAR, parse_store_url


def run_demo(
    url: str, relationships: int, events: int, seed: int, *, json: bool, store_named: bool
) -> None:
    """Check the store is the demo's, fill it (unless it holds a demo already), project
    it, then tell its story (or print it as JSON)."""
    found = check_demo_store(url)
    migrate(url)  # the demo is a newcomer's first command: it prepares its store
    service = LedgerService.open(url)
    try:
        summary: dict[str, Any] = {"store": parse_store_url(url).display}
        if found.relationships:
            render.err.print(
                f"{summary['store']} holds a demo data set already ({found.relationships} "
                "relationships): showing it, recording nothing. For a new one, delete "
                f"{_file_of(url)} or give --db a new store.",
                markup=False,
                highlight=False,
            )
            summary["recorded"] = None
        else:
            lines = [orjson.dumps(event) for event in simulate(relationships, events, seed=seed)]
            with render.err.status(f"ingesting {len(lines)} interactions..."):
                report = service.ingest(lines, batch_size=500, limits=SIMULATED_HISTORY)
            summary["offered"] = len(lines)
            summary["recorded"] = report.view()
        project_now(service)
        _tell(service, summary, _hints(service, url, store_named), json=json)
    finally:
        service.close()


def _file_of(url: str) -> str:
    path = parse_store_url(url).sqlite_path
    return str(path) if path is not None else DEMO_FILE


def _hints(service: LedgerService, url: str, store_named: bool) -> list[str]:
    """The next commands to try, exactly as they run: on this store, with a real id."""
    db = ""
    if not store_named or url != _environment_url():
        shown = url if urlsplit(url).password is None else parse_store_url(url).display
        db = f" --db {shlex.quote(shown)}"
    drops = service.at_risk(None, None, limit=1)
    first = service.relationships(
        queries.Filters(), sort=queries.SortKey.RELATIONSHIP, descending=False, limit=1, offset=0
    )
    example = drops[0]["relationship_id"] if drops else first.items[0]["relationship_id"]
    rel = shlex.quote(example)
    command = _as_invoked()
    return [
        f"{command}{db} list --phase commitment",
        f"{command}{db} show {rel}",
        f"{command}{db} trust-history {rel}",
        f"{command}{db} at-risk --since 2025-01-01T00:00:00Z",
        f"{command}{db} verify",
    ]


def _as_invoked() -> str:
    """`relledger` as the user can type it again: the bare name where the shell finds this
    very program, else the path they ran (`.venv/bin/relledger` before a venv is
    activated, as the README's first command does)."""
    ran = sys.argv[0]
    if Path(ran).name != "relledger":  # python -m relledger
        return "relledger"
    found = shutil.which("relledger")
    if found is not None and Path(found).resolve() == Path(ran).resolve():
        return "relledger"
    return shlex.quote(ran)


def _environment_url() -> str | None:
    return os.environ.get(ENV_VAR) or None


def _tell(service: LedgerService, summary: dict[str, Any], hints: list[str], *, json: bool) -> None:
    counts = service.stats(outliers=0)["distribution"]["phase"]
    most_first = dict(sorted(counts.items(), key=lambda pair: -pair[1]))
    everyone = service.relationships(
        queries.Filters(), sort=queries.SortKey.FAIRNESS, descending=False, limit=10_000, offset=0
    )
    balanced = sorted(everyone.items, key=lambda item: abs(item["fairness"]["index"]))[:3]
    least = service.stats(outliers=3)["fairness_outliers"]
    drops = service.at_risk(None, None, limit=5)
    if json:
        render.print_json(
            {
                **summary,
                "relationships": everyone.total,
                "phases": most_first,
                "most_fair": [item["relationship_id"] for item in balanced],
                "least_fair": [item["relationship_id"] for item in least],
                "largest_trust_drops": [_drop(item) for item in drops],
                "next": hints,
            }
        )
        return
    if summary["recorded"] is not None:
        recorded = summary["recorded"]
        render.out.print(
            f"[bold]demo data set[/]: {summary['offered']} interactions over "
            f"{everyone.total} relationships -> recorded {recorded['recorded']} "
            f"(late {recorded['late']}), duplicates {recorded['duplicates']}, "
            f"conflicts {recorded['conflicts']}, rejected {recorded['rejected']}"
        )
    for grid in (
        render.counts_table("phase", most_first, "phases"),
        render.relationships_table(balanced, "most fair"),
        render.relationships_table(least, "least fair"),
        _drops_table(drops),
    ):
        render.print_table(grid, titled=True)
    render.out.print("\nNext:")
    for hint in hints:
        render.out.print(f"  {hint}", markup=False, highlight=False)


def _drop(item: dict[str, Any]) -> dict[str, Any]:
    change = item["causes"][0]
    return {
        "relationship_id": item["relationship_id"],
        "occurred_at": change["occurred_at"],
        "event_id": change["event_id"],
        "rule": change["rule"],
        "before": change["before"],
        "after": change["after"],
    }


def _drops_table(drops: list[dict[str, Any]]) -> render.Grid:
    table = render.Grid(
        ("relationship", "when", "event", "rule", "before", "after"),
        title="largest trust drops",
        numeric=frozenset({"before", "after"}),
        ids=frozenset({"relationship", "event"}),
    )
    for item in drops:
        change = _drop(item)
        table.add_row(
            change["relationship_id"],
            change["occurred_at"][:10],
            change["event_id"],
            change["rule"],
            f"{change['before']:.2f}",
            render.styled(f"{change['after']:.2f}", "red"),
        )
    return table
