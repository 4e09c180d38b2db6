"""The read models' tables, one set per generation, in SQL both backends accept.

A rebuild writes a whole new generation beside the live one and then switches a
pointer, so the live tables keep answering until the new ones are complete and
checked. Stable SQL views (`relationship_summary`, `trust_changes`,
`phase_changes`, `quarantined_relationships`) always name the live generation, for
the queries here and for anyone reading the database directly.
"""

from __future__ import annotations

from dataclasses import dataclass

SUMMARY_COLUMNS = (
    "relationship_id",
    "phase",
    "stage",
    "connection",
    "trust",
    "credibility_lost",
    "cycle",
    "events",
    "late_events",
    "open_disagreements",
    "last_event_at",
    "last_event_us",
    "fairness_index",
    "fairness_status",
    "value_gap",
    "supplier_contributed",
    "supplier_received",
    "customer_contributed",
    "customer_received",
    "policy",
    "position",
    "state",
    "supplier",
    "customer",
    "retracted",
)
ADDED_SUMMARY_COLUMNS = {"supplier": "TEXT", "customer": "TEXT", "retracted": "INTEGER"}
"""Summary columns later versions added, with their types: `upgrade` adds them to an
older generation (a rebuild fills them in)."""
TRUST_COLUMNS = (
    "relationship_id",
    "position",
    "n",
    "event_id",
    "occurred_at",
    "occurred_us",
    "rule",
    "trust_before",
    "trust_after",
    "delta",
    "policy",
)
PHASE_COLUMNS = (
    "relationship_id",
    "position",
    "n",
    "event_id",
    "occurred_at",
    "occurred_us",
    "from_phase",
    "to_phase",
    "rule",
    "policy",
)
QUARANTINE_COLUMNS = (
    "aggregate_id",
    "relationship_id",
    "position",
    "event_id",
    "reason",
    "policy",
)
COLUMNS = {
    "summary": SUMMARY_COLUMNS,
    "trust": TRUST_COLUMNS,
    "phase": PHASE_COLUMNS,
    "quarantine": QUARANTINE_COLUMNS,
}
STABLE_NAMES = {
    "summary": "relationship_summary",
    "trust": "trust_changes",
    "phase": "phase_changes",
    "quarantine": "quarantined_relationships",
}
META_TABLE = "relledger_projection"


@dataclass(frozen=True)
class Dialect:
    """The few places where SQLite and PostgreSQL differ, as far as these tables go."""

    schema: str | None  # PostgreSQL schema; None for SQLite
    real: str
    bigint: str

    @property
    def is_postgres(self) -> bool:
        return self.schema is not None

    def name(self, table: str) -> str:
        return table if self.schema is None else f'"{self.schema}"."{table}"'

    def sql(self, statement: str) -> str:
        """Statements here are written with `?`; psycopg wants `%s`."""
        return statement if self.schema is None else statement.replace("?", "%s")


SQLITE = Dialect(schema=None, real="REAL", bigint="INTEGER")


def postgres(schema: str) -> Dialect:
    return Dialect(schema=schema, real="DOUBLE PRECISION", bigint="BIGINT")


@dataclass(frozen=True)
class Generation:
    """The names and statements of one generation's tables."""

    number: int
    dialect: Dialect

    def table(self, kind: str) -> str:
        return self.dialect.name(f"{STABLE_NAMES[kind]}_g{self.number}")

    @property
    def tracking_name(self) -> str:
        """This generation's position in the log, as an `eventsourcing` tracking record."""
        return f"relationships_g{self.number}"

    def create(self) -> list[str]:
        d = self.dialect
        summary, trust, phase = self.table("summary"), self.table("trust"), self.table("phase")
        quarantine = self.table("quarantine")
        g = self.number
        new = "CREATE TABLE IF NOT EXISTS"
        return [
            f"{new} {summary} (relationship_id TEXT PRIMARY KEY, phase TEXT, "
            f"stage TEXT NOT NULL, connection TEXT NOT NULL, trust {d.real} NOT NULL, "
            "credibility_lost INTEGER NOT NULL, cycle INTEGER NOT NULL, "
            "events INTEGER NOT NULL, late_events INTEGER NOT NULL, "
            "open_disagreements INTEGER NOT NULL, last_event_at TEXT, "
            f"last_event_us {d.bigint}, "
            f"fairness_index {d.real} NOT NULL, fairness_status TEXT NOT NULL, "
            "value_gap TEXT NOT NULL, supplier_contributed TEXT NOT NULL, "
            "supplier_received TEXT NOT NULL, customer_contributed TEXT NOT NULL, "
            "customer_received TEXT NOT NULL, policy TEXT NOT NULL, "
            f"position {d.bigint} NOT NULL, state TEXT NOT NULL, supplier TEXT, customer TEXT, "
            "retracted INTEGER)",
            f"{new} {trust} (relationship_id TEXT NOT NULL, position {d.bigint} NOT NULL, "
            "n INTEGER NOT NULL, event_id TEXT NOT NULL, occurred_at TEXT NOT NULL, "
            f"occurred_us {d.bigint} NOT NULL, rule TEXT NOT NULL, trust_before {d.real} NOT NULL, "
            f"trust_after {d.real} NOT NULL, delta {d.real} NOT NULL, policy TEXT NOT NULL, "
            "PRIMARY KEY (relationship_id, position, n))",
            f"{new} {phase} (relationship_id TEXT NOT NULL, position {d.bigint} NOT NULL, "
            "n INTEGER NOT NULL, event_id TEXT NOT NULL, occurred_at TEXT NOT NULL, "
            f"occurred_us {d.bigint} NOT NULL, from_phase TEXT, to_phase TEXT NOT NULL, "
            "rule TEXT NOT NULL, policy TEXT NOT NULL, PRIMARY KEY (relationship_id, position, n))",
            # Keyed by the aggregate id: a relationship_id the database cannot store (a NUL
            # on PostgreSQL) is kept escaped, and an unreadable record has none at all.
            f"{new} {quarantine} (aggregate_id TEXT PRIMARY KEY, relationship_id TEXT, "
            f"position {d.bigint} NOT NULL, event_id TEXT, reason TEXT NOT NULL, "
            "policy TEXT NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {_index(d, f'summary_g{g}_phase')} ON {summary} "
            "(phase, relationship_id)",
            f"CREATE INDEX IF NOT EXISTS {_index(d, f'trust_g{g}_when')} ON {trust} (occurred_us)",
            f"CREATE INDEX IF NOT EXISTS {_index(d, f'summary_g{g}_supplier')} ON {summary} "
            "(supplier)",
            f"CREATE INDEX IF NOT EXISTS {_index(d, f'summary_g{g}_customer')} ON {summary} "
            "(customer)",
            # the change feed reads summaries in the order the projector applied them
            f"CREATE INDEX IF NOT EXISTS {_index(d, f'summary_g{g}_position')} ON {summary} "
            "(position)",
        ]

    def add_columns(self, existing: set[str]) -> list[str]:
        """What gives a summary table made by an older version the columns it lacks."""
        return [
            f"ALTER TABLE {self.table('summary')} ADD COLUMN {column} {kind}"
            for column, kind in ADDED_SUMMARY_COLUMNS.items()
            if column not in existing
        ]

    def drop(self) -> list[str]:
        return [f"DROP TABLE IF EXISTS {self.table(kind)}" for kind in STABLE_NAMES]

    def point_views(self) -> list[str]:
        """Make the stable view names show this generation."""
        statements = []
        for kind, stable in STABLE_NAMES.items():
            statements.append(f"DROP VIEW IF EXISTS {self.dialect.name(stable)}")
            statements.append(self.view_definition(kind))
        return statements

    def view_definition(self, kind: str) -> str:
        """The statement that makes a stable view show this generation's table: every
        query reads through it, so `RelationshipView.redefined_views` holds the views in
        the database to exactly this."""
        return (
            f"CREATE VIEW {self.dialect.name(STABLE_NAMES[kind])} AS "
            f"SELECT * FROM {self.table(kind)}"
        )

    def insert(self, kind: str) -> str:
        columns = COLUMNS[kind]
        marks = ", ".join("?" for _ in columns)
        return self.dialect.sql(
            f"INSERT INTO {self.table(kind)} ({', '.join(columns)}) VALUES ({marks})"
        )

    def upsert_summary(self) -> str:
        updates = ", ".join(f"{c} = excluded.{c}" for c in SUMMARY_COLUMNS[1:])
        return f"{self.insert('summary')} ON CONFLICT (relationship_id) DO UPDATE SET {updates}"

    def select_states(self, count: int) -> str:
        marks = ", ".join("?" for _ in range(count))
        return self.dialect.sql(
            f"SELECT relationship_id, state FROM {self.table('summary')} "
            f"WHERE relationship_id IN ({marks})"
        )


def _index(dialect: Dialect, name: str) -> str:
    """Index names live in the schema of their table; only the bare name is given."""
    return f'"{name}"' if dialect.is_postgres else name


def meta_create(dialect: Dialect) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {dialect.name(META_TABLE)} (name TEXT PRIMARY KEY, "
        "generation INTEGER NOT NULL, policy TEXT NOT NULL, "
        "allocated INTEGER NOT NULL DEFAULT 1)"
    )
