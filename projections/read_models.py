"""Each read model declared once: its columns, its rows from a fold, its records from a row.

The read side is four tables per generation: the summary (one row per relationship,
its standing and the fold state to resume from), the trust and phase histories (one
row per change, keyed by the log position of the event that caused it and its order
there), and the quarantine. Each is declared here, once, as a `ReadModel`; the tables'
statements and indexes (`tables`), their inserts, the summary's upsert, PostgreSQL's
COPY column lists, the digests that check a rebuild and the CSV export all derive from
these declarations, so a column is added in one place.

A column names where its value comes from (`source`, an attribute path on the record
the fold produced) and how it is stored (`dump`) and read back (`load`); a column that
is only derived for queries (a time as microseconds, a delta) is `derived` and never
read back. The histories and the quarantine read back into their records generically;
the summary reads back into a `Standing` through `standing_from_row`, written out below
since its record nests fairness and totals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum
from functools import cached_property
from operator import attrgetter
from typing import Any, NamedTuple
from uuid import UUID

import orjson

from domain.fold.fairness import Fairness, FairnessStatus, Ledger
from domain.fold.records import Connection, Phase, PhaseChange, Standing, TrustChange
from domain.fold.scorer import Scorer
from domain.fold.stage import Stage
from domain.fold.state import dump_state
from domain.relationship import epoch_us
from projections.quarantine import Quarantined
from projections.views import phase_change_view, standing_view, trust_change_view, when

Row = tuple[Any, ...]


class SqlType(Enum):
    """A column's type; `tables.Dialect` spells it for each backend."""

    TEXT = "text"
    REAL = "real"
    INTEGER = "integer"
    BIGINT = "bigint"


TEXT, REAL, INTEGER, BIGINT = SqlType.TEXT, SqlType.REAL, SqlType.INTEGER, SqlType.BIGINT


def _value(member: Enum | None) -> Any:
    return None if member is None else member.value


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else when(moment)


def _epoch(moment: datetime | None) -> int | None:
    return None if moment is None else epoch_us(moment)


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: SqlType
    source: str | None = None
    """The attribute (a dotted path) of the fold's record this column stores; None for the
    columns a row's writer gives (relationship, position, order)."""
    dump: Callable[[Any], Any] | None = None
    """How the attribute is stored, if not as it is."""
    load: Callable[[Any], Any] | None = None
    """How the stored value is read back into the attribute, if not as it is."""
    derived: bool = False
    """Stored for queries only (computed from another attribute), never read back."""
    nullable: bool = False
    added: bool = False
    """Added after the table was first released: `migrate` adds it to an older
    generation (left empty until a rebuild fills it in), so it must be nullable."""


@dataclass(frozen=True)
class ReadModel:
    """One read model's table: its columns, primary key and indexes, and the record a row
    holds (for the models read back generically)."""

    kind: str
    stable: str
    """The SQL view that always shows the live generation's table."""
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    indexes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Index name suffix -> its columns."""
    record: Callable[..., Any] | None = None

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @cached_property
    def added(self) -> tuple[Column, ...]:
        return tuple(column for column in self.columns if column.added)

    @cached_property
    def _sources(self) -> tuple[Column, ...]:
        return tuple(column for column in self.columns if column.source is not None)

    @cached_property
    def _get(self) -> Callable[[Any], Any]:
        """Every sourced attribute of a record, as a tuple, in one call."""
        get = attrgetter(*(column.source for column in self._sources if column.source))
        return get if len(self._sources) > 1 else lambda record: (get(record),)

    @cached_property
    def _dumps(self) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
        return tuple(
            (n, column.dump) for n, column in enumerate(self._sources) if column.dump is not None
        )

    def values(self, record: Any) -> Row:
        """The stored values of the columns that have a source, in column order (the
        projector makes one row per change it folds: this runs a million times in a
        catch-up, so the attributes are read in one `attrgetter` call)."""
        values = list(self._get(record))
        for n, dump in self._dumps:
            values[n] = dump(values[n])
        return tuple(values)

    def load(self, row: Mapping[str, Any]) -> Any:
        """The record a row holds (histories and quarantine)."""
        assert self.record is not None, f"{self.kind} rows are read back by hand"
        return self.record(
            **{
                column.source: row[column.name]
                if column.load is None
                else column.load(row[column.name])
                for column in self.columns
                if column.source is not None and not column.derived
            }
        )


def _history(
    kind: str, stable: str, record: type, *middle: Column, **indexes: tuple[str, ...]
) -> ReadModel:
    """A history: one row per change, at the log position of the event that caused it,
    `n` ordering several changes one event caused; each names its event and when."""
    return ReadModel(
        kind=kind,
        stable=stable,
        columns=(
            Column("relationship_id", TEXT),
            Column("position", BIGINT),
            Column("n", INTEGER),
            Column("event_id", TEXT, "event_id"),
            Column("occurred_at", TEXT, "occurred_at", when, datetime.fromisoformat),
            Column("occurred_us", BIGINT, "occurred_at", epoch_us, derived=True),
            *middle,
            Column("policy", TEXT, "policy"),
        ),
        key=("relationship_id", "position", "n"),
        indexes=indexes,
        record=record,
    )


TRUST_HISTORY = _history(
    "trust",
    "trust_changes",
    TrustChange,
    Column("rule", TEXT, "rule"),
    Column("trust_before", REAL, "before"),
    Column("trust_after", REAL, "after"),
    Column("delta", REAL, "delta", derived=True),
    when=("occurred_us",),
)
PHASE_HISTORY = _history(
    "phase",
    "phase_changes",
    PhaseChange,
    Column(
        "from_phase",
        TEXT,
        "from_phase",
        _value,
        lambda v: None if v is None else Phase(v),
        nullable=True,
    ),
    Column("to_phase", TEXT, "to_phase", _value, Phase),
    Column("rule", TEXT, "rule"),
)


class SummaryRecord(NamedTuple):
    """What a summary row is made from: the relationship's standing after a fold, the log
    position of the last event folded and the fold state to resume from."""

    relationship_id: str
    standing: Standing
    position: int
    state: str


SUMMARY = ReadModel(
    kind="summary",
    stable="relationship_summary",
    columns=(
        Column("relationship_id", TEXT, "relationship_id"),
        Column("phase", TEXT, "standing.phase", _value, nullable=True),
        Column("stage", TEXT, "standing.stage", _value),
        Column("connection", TEXT, "standing.connection", _value),
        Column("trust", REAL, "standing.trust"),
        Column("credibility_lost", INTEGER, "standing.credibility_lost", int),
        Column("cycle", INTEGER, "standing.cycle"),
        Column("events", INTEGER, "standing.events"),
        Column("late_events", INTEGER, "standing.late_events"),
        Column("open_disagreements", INTEGER, "standing.open_disagreements"),
        Column("last_event_at", TEXT, "standing.last_event_at", _when, nullable=True),
        Column("last_event_us", BIGINT, "standing.last_event_at", _epoch, nullable=True),
        Column("fairness_index", REAL, "standing.fairness.index", float),
        Column("fairness_status", TEXT, "standing.fairness.status", _value),
        Column("value_gap", TEXT, "standing.fairness.totals.value_gap", str),
        Column("supplier_contributed", TEXT, "standing.fairness.totals.supplier_contributed", str),
        Column("supplier_received", TEXT, "standing.fairness.totals.supplier_received", str),
        Column("customer_contributed", TEXT, "standing.fairness.totals.customer_contributed", str),
        Column("customer_received", TEXT, "standing.fairness.totals.customer_received", str),
        Column("policy", TEXT, "standing.policy"),
        Column("position", BIGINT, "position"),
        Column("state", TEXT, "state"),
        Column(
            "supplier",
            TEXT,
            "standing",
            lambda s: s.parties and s.parties[0],
            nullable=True,
            added=True,
        ),
        Column(
            "customer",
            TEXT,
            "standing",
            lambda s: s.parties and s.parties[1],
            nullable=True,
            added=True,
        ),
        Column("retracted", INTEGER, "standing.retracted", nullable=True, added=True),
        Column("currency", TEXT, "standing.currency", nullable=True, added=True),
        Column("first_event_at", TEXT, "standing.first_event_at", _when, nullable=True, added=True),
    ),
    key=("relationship_id",),
    indexes={
        "phase": ("phase", "relationship_id"),
        "supplier": ("supplier",),
        "customer": ("customer",),
        # the change feed reads summaries in the order the projector applied them
        "position": ("position",),
    },
)
QUARANTINE = ReadModel(
    kind="quarantine",
    stable="quarantined_relationships",
    # Keyed by the aggregate id: a relationship_id the database cannot store (a NUL on
    # PostgreSQL) is kept escaped, and an unreadable record has none at all.
    columns=(
        Column("aggregate_id", TEXT, "aggregate_id", str, UUID),
        Column("relationship_id", TEXT, "relationship_id", nullable=True),
        Column("position", BIGINT, "position"),
        Column("event_id", TEXT, "event_id", nullable=True),
        Column("reason", TEXT, "reason"),
        Column("policy", TEXT, "policy"),
    ),
    key=("aggregate_id",),
    record=Quarantined,
)
READ_MODELS = {model.kind: model for model in (SUMMARY, TRUST_HISTORY, PHASE_HISTORY, QUARANTINE)}


def summary_row(relationship_id: str, scorer: Scorer, position: int) -> Row:
    state = orjson.dumps(dump_state(scorer)).decode()
    return SUMMARY.values(SummaryRecord(relationship_id, scorer.standing(), position, state))


def history_rows(
    model: ReadModel, relationship_id: str, position: int, changes: Sequence[Any]
) -> list[Row]:
    """The rows of the changes one event (at log `position`) caused, in order."""
    return [
        (relationship_id, position, n, *model.values(change)) for n, change in enumerate(changes)
    ]


def quarantine_row(held: Quarantined) -> Row:
    return QUARANTINE.values(held)


def standing_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The object `show --json` promises: the row read back into a `Standing` and shown
    by `views`, so the read models and a replay share one definition of that shape."""
    return standing_view(row["relationship_id"], _standing(row))


def _standing(row: Mapping[str, Any]) -> Standing:
    return Standing(
        phase=None if row["phase"] is None else Phase(row["phase"]),
        stage=Stage(row["stage"]),
        connection=Connection(row["connection"]),
        trust=row["trust"],
        credibility_lost=bool(row["credibility_lost"]),
        cycle=row["cycle"],
        events=row["events"],
        late_events=row["late_events"],
        open_disagreements=row["open_disagreements"],
        fairness=Fairness(
            index=Decimal(row["fairness_index"]),
            status=FairnessStatus(row["fairness_status"]),
            totals=Ledger(
                supplier_contributed=Decimal(row["supplier_contributed"]),
                supplier_received=Decimal(row["supplier_received"]),
                customer_contributed=Decimal(row["customer_contributed"]),
                customer_received=Decimal(row["customer_received"]),
                value_gap=Decimal(row["value_gap"]),
            ),
        ),
        last_event_at=_time(row["last_event_at"]),
        as_of=None,
        policy=row["policy"],
        parties=None if row["supplier"] is None else (row["supplier"], row["customer"]),
        retracted=row["retracted"] or 0,  # null in rows projected before retractions existed
        currency=row["currency"],
        first_event_at=_time(row["first_event_at"]),
    )


def trust_change_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return trust_change_view(TRUST_HISTORY.load(row))


def phase_change_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return phase_change_view(PHASE_HISTORY.load(row))
