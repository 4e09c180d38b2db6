"""`relledger export --read-models DIR`: the read models as CSV, for a spreadsheet or a
warehouse.

Three files, one per stable SQL view (`relationship_summary`, `trust_changes`,
`phase_changes`: always the live generation), each with a header row and RFC 4180
quoting (Python's `csv`). Columns are the read models' own, as
`projections.read_models` declares them, minus the summary's `state` (the fold's
private resume state: an internal format, not a figure). Rows are read in pages by
key (the summary by relationship, the histories by relationship, log position and
order within it), so
memory holds one page; a projector running meanwhile may move rows between two pages,
so export from read models that are caught up (`relledger project`) for one moment's
figures. Values are written as stored: trust as the float kept, money as its decimal
text, `credibility_lost` as 0 or 1, an absent value as an empty field.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from projections.read_models import PHASE_HISTORY, SUMMARY, TRUST_HISTORY, ReadModel
from projections.view import RelationshipView
from service.audit_files import CannotWrite, output_file, refuse_existing

PAGE = 5000
INTERNAL = frozenset({"state"})
"""Columns that are the projector's working state, not read-model figures."""
EXPORTED = (
    ("relationship_summary.csv", SUMMARY),
    ("trust_changes.csv", TRUST_HISTORY),
    ("phase_changes.csv", PHASE_HISTORY),
)
"""Each file and the read model (`projections.read_models`) it holds."""


def columns(model: ReadModel) -> tuple[str, ...]:
    return tuple(name for name in model.names if name not in INTERNAL)


def _pages(view: RelationshipView, model: ReadModel, page: int) -> Iterator[list[dict[str, Any]]]:
    table = view.dialect.name(model.stable)
    selected = ", ".join(columns(model))
    order = ", ".join(model.key)
    after: Sequence[Any] | None = None
    while True:
        where = ""
        if after is not None:
            marks = ", ".join("?" for _ in model.key)
            where = f" WHERE ({order}) > ({marks})" if len(model.key) > 1 else f" WHERE {order} > ?"
        rows = view.query(
            f"SELECT {selected} FROM {table}{where} ORDER BY {order} LIMIT {int(page)}",
            list(after or ()),
        )
        if rows:
            yield rows
        if len(rows) < page:
            return
        after = [rows[-1][column] for column in model.key]


def export_read_models(
    view: RelationshipView, folder: Path, *, replace: bool = False, page: int = PAGE
) -> dict[str, int]:
    """Write the three CSV files into `folder` (created if missing); an existing file is
    refused unless `replace`. Returns the rows written per file."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CannotWrite(f"cannot create {folder}: {error.strerror}") from None
    for name, _ in EXPORTED:  # refused before any is written, not half-way
        refuse_existing(folder / name, replace=replace)
    written: dict[str, int] = {}
    for name, model in EXPORTED:
        count = 0
        header = columns(model)
        with output_file(folder / name, replace=replace) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            out = csv.writer(text)  # RFC 4180: CRLF line ends, quotes where needed
            out.writerow(header)
            for rows in _pages(view, model, page):
                out.writerows([row[column] for column in header] for row in rows)
                count += len(rows)
            text.flush()
            text.detach()
        written[name] = count
    return written
