"""How the CLI prints: one `Grid` for every table, JSON and CSV for other programs.

A table must never cut an id or a rule, wherever it goes. On a terminal a `Grid` is a
rich table whose cells fold onto more lines when the terminal is narrower than they
are (never "…"); anywhere else (a pipe, a file) it is plain tab-separated text with one
header line and no title, box or colour, so `relledger list | cut -f1` gives the ids.
Whether stdout is a terminal is rich's answer, so `TTY_COMPATIBLE=1` (or `FORCE_COLOR`)
forces the table and `TTY_COMPATIBLE=0` the plain text. `--csv` writes the same cells
as RFC 4180 CSV with the `csv` module. Cells are plain text (a style only decorates
them), so an id is never read as rich markup.

The tables of relledger's own answers (a standing, histories, relationships, counts)
are built here too, so every command shows them alike.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

import iso4217
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

PHASE_STYLE = {
    "awareness": "cyan",
    "exploration": "yellow",
    "expansion": "green",
    "commitment": "bold green",
    "dissolution": "red",
}

Cell = str | Text


@dataclass
class Grid:
    """A table: columns, rows of plain-text cells, and a title for the terminal only."""

    columns: Sequence[str]
    title: str | None = None
    numeric: frozenset[str] = frozenset()
    """Columns aligned right on a terminal."""
    header: bool = True
    """Whether a terminal shows the column names (the plain forms always carry them)."""
    ids: frozenset[str] = frozenset()
    """Columns of ids: on a terminal they get up to a third of its width before the
    other columns, so an id folds only when it must."""
    rows: list[list[Text]] = field(default_factory=list)

    def add_row(self, *cells: Cell) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append([cell if isinstance(cell, Text) else Text(cell) for cell in cells])

    def table(self, width: int = 80) -> Table:
        """The terminal form, `width` columns wide at most: cells wrap or fold, never end
        in an ellipsis."""
        table = Table(title=self.title, title_justify="left", show_header=self.header)
        widths = self._widths(width - 3 * len(self.columns) - 1)  # borders and padding
        for name, fixed in zip(self.columns, widths, strict=True):
            table.add_column(
                name,
                justify="right" if name in self.numeric else "left",
                overflow="fold",
                no_wrap=False,
                width=fixed,
            )
        for row in self.rows:
            table.add_row(*row)
        return table

    def _widths(self, room: int) -> list[int | None]:
        """Each column's width when the content is wider than `room` (else rich's own):
        id columns keep their width up to a third of the room, then the widest of the
        other columns gives way first, so short columns stay whole."""
        natural = [
            max([len(name) if self.header else 1, *(row[i].cell_len for row in self.rows)])
            for i, name in enumerate(self.columns)
        ]
        if sum(natural) <= room:
            return [None] * len(natural)
        widths = list(natural)
        for i, name in enumerate(self.columns):
            if name in self.ids:
                widths[i] = max(1, min(natural[i], room // 3))
        others = [i for i, name in enumerate(self.columns) if name not in self.ids]
        spare = room - sum(widths[i] for i in range(len(widths)) if i not in others)
        while others and sum(widths[i] for i in others) > max(spare, len(others)):
            widest = max(others, key=lambda i: widths[i])
            widths[widest] -= 1
        return list(widths)

    def plain_rows(self) -> list[list[str]]:
        """The header, then every row, as plain text."""
        return [list(self.columns), *([cell.plain for cell in row] for row in self.rows)]

    def tsv(self) -> str:
        """Tab-separated lines; a tab or line break inside a cell becomes a space."""
        return "".join(
            "\t".join(_one_field(cell) for cell in row) + "\n" for row in self.plain_rows()
        )

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if console.is_terminal:
            yield self.table(options.max_width)
            return
        for line in self.tsv().splitlines():
            yield Segment(line)
            yield Segment.line()


def _one_field(text: str) -> str:
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def print_table(grid: Grid, *, as_csv: bool = False, titled: bool = False) -> None:
    """Print `grid` on stdout: as CSV, as a table on a terminal, else tab-separated.
    `titled`: one of several tables printed together, so its title (which a terminal
    shows above it) goes above the tab-separated lines too, telling them apart."""
    if as_csv:
        write_csv(grid)
        return
    if titled and grid.title and not out.is_terminal:
        out.print(f"# {grid.title}", markup=False, highlight=False)
    out.print(grid)


def write_csv(grid: Grid) -> None:
    """RFC 4180: a header record, CRLF line ends, fields quoted where they must be."""
    writer = csv.writer(sys.stdout, lineterminator="\r\n")
    writer.writerows(grid.plain_rows())
    sys.stdout.flush()


def print_json_line(value: Any) -> None:
    """One JSON object on one line (a stream of them, as `project --follow --json` gives)."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def styled(text: str, style: str) -> Text:
    return Text(text, style=style)


def phase_text(phase: str | None) -> Text:
    if phase is None:
        return Text("-")
    return Text(phase, style=PHASE_STYLE.get(phase, ""))


def signed(value: float, places: int) -> Text:
    """A change: red when it falls, green when it rises."""
    return Text(f"{value:+.{places}f}", style="red" if value < 0 else "green")


def money(amount: str, currency: str | None) -> str:
    """A decimal amount with its currency's usual minor-unit places (ISO 4217 exponent:
    EUR 2, JPY 0, BHD 3), for tables; JSON keeps the exact text. Without a known
    currency the exact text is shown as it is."""
    if currency is None:
        return amount
    try:
        exponent = iso4217.Currency(currency).exponent
        value = Decimal(amount)
    except (ValueError, InvalidOperation):
        return f"{amount} {currency}"
    if exponent is None:
        return f"{amount} {currency}"
    rounded = value.quantize(Decimal(1).scaleb(-exponent), rounding=ROUND_HALF_EVEN)
    return f"{rounded:f} {currency}"


def _text(value: Any) -> str:
    return "-" if value is None else str(value)


def standing_table(view: dict[str, Any], title: str | None = None) -> Grid:
    """Where a relationship stands (`show`, `replay`): one field a row.

    `currency`, `first_event_at`, `last_event_at` and `late_events` are shown when the
    view carries them."""
    grid = Grid(["field", "value"], title=title or view["relationship_id"], header=False)
    fairness = view["fairness"]
    currency = view.get("currency")
    parties = view.get("parties") or {}
    trust = Text(f"{view['trust']:.4f}")
    if view["credibility_lost"]:
        trust.append("  (credibility lost: capped)", style="red")
    rows: list[tuple[str, Cell | None]] = [
        ("relationship", view["relationship_id"]),
        ("supplier", parties.get("supplier")),
        ("customer", parties.get("customer")),
        ("currency", currency),
        ("phase", phase_text(view["phase"])),
        ("stage", view["stage"]),
        ("connection", view["connection"]),
        ("trust", trust),
        ("cycle", str(view["cycle"])),
        ("events", str(view["events"])),
        ("late", _text(view["late_events"]) if "late_events" in view else None),
        ("retracted", str(view["retracted"])),
        ("first event", view.get("first_event_at")),
        ("last event", view.get("last_event_at")),
        ("fairness", f"{fairness['index']:+.4f} {fairness['status']}"),
        ("value gap", money(fairness["value_gap"], currency)),
    ]
    for side in ("supplier", "customer"):
        gave = money(fairness[side]["contributed"], currency)
        got = money(fairness[side]["received"], currency)
        rows.append((f"{side} totals", f"contributed {gave}, received {got}"))
    rows.append(("policy", view["policy"]))
    for name, value in rows:
        if value is not None:
            grid.add_row(name, value)
    return grid


def history_table(title: str, columns: list[str], rows: Iterable[dict[str, Any]]) -> Grid:
    """Trust or phase changes, in order."""
    grid = Grid(
        columns,
        title=title,
        numeric=frozenset({"before", "after", "delta"}),
        ids=frozenset({"event_id"}),
    )
    for row in rows:
        cells: list[Cell] = []
        for column in columns:
            value = row[column]
            if column == "delta":
                cells.append(signed(value, 4))
            elif column in ("from", "to"):
                cells.append(phase_text(value))
            elif isinstance(value, float):
                cells.append(f"{value:.4f}")
            else:
                cells.append(_text(value))
        grid.add_row(*cells)
    return grid


RELATIONSHIP_COLUMNS = (
    "relationship",
    "phase",
    "stage",
    "connection",
    "trust",
    "fairness",
    "status",
    "events",
)


def relationships_table(views: list[dict[str, Any]], title: str = "relationships") -> Grid:
    grid = Grid(
        RELATIONSHIP_COLUMNS,
        title=title,
        numeric=frozenset({"trust", "fairness", "events"}),
        ids=frozenset({"relationship"}),
    )
    for view in views:
        fairness = view["fairness"]
        grid.add_row(
            view["relationship_id"],
            phase_text(view["phase"]),
            view["stage"],
            view["connection"],
            f"{view['trust']:.2f}",
            f"{fairness['index']:+.3f}",
            fairness["status"],
            str(view["events"]),
        )
    return grid


def counts_table(name: str, counts: dict[str, int], title: str | None = None) -> Grid:
    """How many relationships have each value of `name`, in the order given (phases
    in their colours)."""
    grid = Grid([name, "relationships"], title=title or name.replace("_", " "))
    grid.numeric = frozenset({"relationships"})
    for value, count in counts.items():
        grid.add_row(phase_text(value) if name == "phase" else value, str(count))
    return grid


def distribution_table(distribution: dict[str, dict[str, int]]) -> Grid:
    """Every count of `stats` in one table: dimension, value, relationships; the
    dimensions and their values in the order given (the domain's)."""
    grid = Grid(
        ["dimension", "value", "relationships"],
        title="relationships by phase, stage, connection and fairness",
        numeric=frozenset({"relationships"}),
    )
    for dimension, counts in distribution.items():
        for value, count in counts.items():
            shown = phase_text(value) if dimension == "phase" else Text(value)
            grid.add_row(dimension, shown, str(count))
    return grid
