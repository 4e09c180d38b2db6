"""Human-readable output: rich tables for a terminal, JSON for other programs."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.table import Table

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

PHASE_STYLE = {
    "awareness": "cyan",
    "exploration": "yellow",
    "expansion": "green",
    "commitment": "bold green",
    "dissolution": "red",
}


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def phase_text(phase: str | None) -> str:
    if phase is None:
        return "-"
    return f"[{PHASE_STYLE.get(phase, '')}]{phase}[/]"


def standing_table(view: dict[str, Any], title: str | None = None) -> Table:
    fairness = view["fairness"]
    table = Table(title=title or view["relationship_id"], show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    credibility = "  [red](credibility lost: capped)[/]" if view["credibility_lost"] else ""
    rows = [
        ("phase", phase_text(view["phase"])),
        ("stage", view["stage"]),
        ("connection", view["connection"]),
        ("trust", f"{view['trust']:.4f}{credibility}"),
        ("cycle", str(view["cycle"])),
        ("events", str(view["events"])),
        ("retracted", str(view["retracted"])),
        ("fairness", f"{fairness['index']:+.4f} {fairness['status']}"),
        ("value gap", fairness["value_gap"]),
        (
            "supplier",
            f"contributed {fairness['supplier']['contributed']}, "
            f"received {fairness['supplier']['received']}",
        ),
        (
            "customer",
            f"contributed {fairness['customer']['contributed']}, "
            f"received {fairness['customer']['received']}",
        ),
        ("policy", view["policy"]),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def history_table(title: str, columns: list[str], rows: Iterable[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        numeric = column in ("before", "after", "delta")
        table.add_column(column, justify="right" if numeric else "left")
    for row in rows:
        cells = []
        for column in columns:
            value = row[column]
            if column == "delta":
                style = "red" if value < 0 else "green"
                cells.append(f"[{style}]{value:+.4f}[/]")
            elif column in ("from", "to"):
                cells.append(phase_text(value))
            elif isinstance(value, float):
                cells.append(f"{value:.4f}")
            else:
                cells.append("-" if value is None else str(value))
        table.add_row(*cells)
    return table


def relationships_table(views: list[dict[str, Any]], title: str = "relationships") -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("relationship", "phase", "stage", "connection", "trust", "fairness", "events"):
        table.add_column(column, justify="right" if column in ("trust", "events") else "left")
    for view in views:
        fairness = view["fairness"]
        table.add_row(
            view["relationship_id"],
            phase_text(view["phase"]),
            view["stage"],
            view["connection"],
            f"{view['trust']:.2f}",
            f"{fairness['index']:+.3f} {fairness['status']}",
            str(view["events"]),
        )
    return table


def counts_table(name: str, counts: dict[str, int], title: str | None = None) -> Table:
    """How many relationships have each value of `name` (phases in their colours)."""
    table = Table(title=title or name.replace("_", " "), title_justify="left")
    table.add_column(name)
    table.add_column("relationships", justify="right")
    for value, count in counts.items():
        table.add_row(phase_text(value) if name == "phase" else value, str(count))
    return table
