"""`relledger demo`: a realistic data set, ingested and projected, then the story it tells."""

from __future__ import annotations

import orjson
from rich.table import Table

from projections import queries
from relledger import render
from relledger.cli_read import project_now
from relledger.simulate import SIMULATED_HISTORY, simulate
from service.ledger_service import LedgerService


def run_demo(service: LedgerService, relationships: int, events: int, seed: int) -> None:
    lines = [orjson.dumps(event) for event in simulate(relationships, events, seed=seed)]
    with render.err.status(f"ingesting {len(lines)} interactions..."):
        report = service.ingest(lines, batch_size=500, limits=SIMULATED_HISTORY)
    project_now(service)
    render.out.print(
        f"[bold]demo data set[/]: {len(lines)} interactions over {relationships} relationships "
        f"-> {report.summary()}"
    )
    _phases(service)
    _fairness(service)
    _trust_drops(service)
    render.out.print(
        "\nNext: [bold]relledger list --phase commitment[/], "
        "[bold]relledger show ID[/], [bold]relledger trust-history ID[/], "
        "[bold]relledger at-risk --since 2025-01-01T00:00:00Z[/], [bold]relledger verify[/]"
    )


def _phases(service: LedgerService) -> None:
    counts = service.stats(outliers=0)["distribution"]["phase"]
    most_first = dict(sorted(counts.items(), key=lambda pair: -pair[1]))
    render.out.print(render.counts_table("phase", most_first, "phases"))


def _fairness(service: LedgerService) -> None:
    everyone = service.relationships(
        queries.Filters(), sort=queries.SortKey.FAIRNESS, descending=False, limit=10_000, offset=0
    )
    balanced = sorted(everyone.items, key=lambda item: abs(item["fairness"]["index"]))
    render.out.print(render.relationships_table(balanced[:3], "most fair"))
    least = service.stats(outliers=3)["fairness_outliers"]
    render.out.print(render.relationships_table(least, "least fair"))


def _trust_drops(service: LedgerService) -> None:
    table = Table(title="largest trust drops", title_justify="left")
    for column in ("relationship", "when", "event", "rule", "before", "after"):
        table.add_column(column)
    drops = service.at_risk(None, None, limit=5)
    for item in drops:
        change = item["causes"][0]
        table.add_row(
            item["relationship_id"],
            change["occurred_at"][:10],
            change["event_id"],
            change["rule"],
            f"{change['before']:.2f}",
            f"[red]{change['after']:.2f}[/]",
        )
    render.out.print(table)
