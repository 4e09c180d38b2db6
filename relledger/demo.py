"""`relledger demo`: a realistic data set, ingested, then the story it tells."""

from __future__ import annotations

from collections import Counter

import orjson
from rich.table import Table

from consumers.jsonl import ingest_lines
from domain.ledger import RelationshipLedger
from projections.replay import Replay, replay_all
from projections.views import standing_view
from relledger import render
from relledger.policies import load_policy
from relledger.simulate import simulate


def run_demo(ledger: RelationshipLedger, relationships: int, events: int, seed: int) -> None:
    lines = [orjson.dumps(event) for event in simulate(relationships, events, seed=seed)]
    with render.err.status(f"ingesting {len(lines)} interactions..."):
        report = ingest_lines(ledger, lines)
    render.out.print(
        f"[bold]demo data set[/]: {len(lines)} interactions over {relationships} relationships "
        f"-> recorded {report.recorded} (late {report.late}), duplicates {report.duplicates}, "
        f"rejected {report.rejected}"
    )
    everything = list(replay_all(ledger, load_policy()))
    _phases(everything)
    _fairness(everything)
    _trust_drops(everything)
    render.out.print(
        "\nNext: [bold]relledger list --phase commitment[/], "
        "[bold]relledger show ID[/], [bold]relledger trust-history ID[/], "
        "[bold]relledger verify[/]"
    )


def _phases(everything: list[Replay]) -> None:
    counts = Counter(item.standing.phase for item in everything)
    table = Table(title="phases", title_justify="left")
    table.add_column("phase")
    table.add_column("relationships", justify="right")
    for phase, count in sorted(counts.items(), key=lambda pair: -pair[1]):
        table.add_row(render.phase_text(None if phase is None else phase.value), str(count))
    render.out.print(table)


def _fairness(everything: list[Replay]) -> None:
    ranked = sorted(everything, key=lambda item: abs(item.standing.fairness.index))
    views = [standing_view(item.relationship_id, item.standing) for item in ranked]
    render.out.print(render.relationships_table(views[:3], "most fair"))
    render.out.print(render.relationships_table(views[-3:][::-1], "least fair"))


def _trust_drops(everything: list[Replay]) -> None:
    drops = [
        (change, item.relationship_id)
        for item in everything
        for change in item.scorer.trust_changes
        if change.delta < 0
    ]
    drops.sort(key=lambda pair: pair[0].delta)
    table = Table(title="largest trust drops", title_justify="left")
    for column in ("relationship", "when", "event", "rule", "before", "after"):
        table.add_column(column)
    for change, relationship_id in drops[:5]:
        table.add_row(
            relationship_id,
            change.occurred_at.date().isoformat(),
            change.event_id,
            change.rule,
            f"{change.before:.2f}",
            f"[red]{change.after:.2f}[/]",
        )
    render.out.print(table)
