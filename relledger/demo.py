"""`relledger demo`: a realistic data set, ingested and projected, then the story it tells."""

from __future__ import annotations

import orjson
from rich.table import Table

from consumers.jsonl import ingest_lines
from domain.ledger import RelationshipLedger
from projections import queries
from projections.view import RelationshipView
from relledger import render
from relledger.cli_read import project_now
from relledger.simulate import SIMULATED_HISTORY, simulate


def run_demo(
    ledger: RelationshipLedger,
    view: RelationshipView,
    relationships: int,
    events: int,
    seed: int,
) -> None:
    lines = [orjson.dumps(event) for event in simulate(relationships, events, seed=seed)]
    with render.err.status(f"ingesting {len(lines)} interactions..."):
        report = ingest_lines(ledger, lines, limits=SIMULATED_HISTORY)
    project_now(ledger, view)
    render.out.print(
        f"[bold]demo data set[/]: {len(lines)} interactions over {relationships} relationships "
        f"-> {report.summary()}"
    )
    _phases(view)
    _fairness(view)
    _trust_drops(view)
    render.out.print(
        "\nNext: [bold]relledger list --phase commitment[/], "
        "[bold]relledger show ID[/], [bold]relledger trust-history ID[/], "
        "[bold]relledger at-risk --since 2025-01-01T00:00:00Z[/], [bold]relledger verify[/]"
    )


def _phases(view: RelationshipView) -> None:
    counts = queries.distribution(view)["phase"]
    most_first = dict(sorted(counts.items(), key=lambda pair: -pair[1]))
    render.out.print(render.counts_table("phase", most_first, "phases"))


def _fairness(view: RelationshipView) -> None:
    balanced = queries.list_relationships(view, sort=queries.SortKey.FAIRNESS, limit=10_000).items
    balanced.sort(key=lambda item: abs(item["fairness"]["index"]))
    render.out.print(render.relationships_table(balanced[:3], "most fair"))
    least = queries.fairness_outliers(view, limit=3)
    render.out.print(render.relationships_table(least, "least fair"))


def _trust_drops(view: RelationshipView) -> None:
    table = Table(title="largest trust drops", title_justify="left")
    for column in ("relationship", "when", "event", "rule", "before", "after"):
        table.add_column(column)
    drops = queries.trust_drops(view, limit=5)
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
