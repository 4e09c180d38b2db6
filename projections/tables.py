"""The read models' tables, one set per generation, in SQL both backends accept.

A rebuild writes a whole new generation beside the live one and then switches a
pointer, so the live tables keep answering until the new ones are complete and
checked. Stable SQL views (`relationship_summary`, `trust_changes`,
`phase_changes`, `quarantined_relationships`) always name the live generation, for
the queries here and for anyone reading the database directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from projections.read_models import READ_MODELS, SUMMARY, Column, SqlType

STABLE_NAMES = {kind: model.stable for kind, model in READ_MODELS.items()}
META_TABLE = "relledger_projection"


@dataclass(frozen=True)
class Dialect:
    """The few places where SQLite and PostgreSQL differ, as far as these tables go."""

    schema: str | None  # PostgreSQL schema; None for SQLite
    real: str
    bigint: str

    def type(self, column: Column) -> str:
        spelled = {SqlType.REAL: self.real, SqlType.BIGINT: self.bigint}
        return spelled.get(column.type, column.type.value.upper())

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
        """Each read model's table and indexes, as `read_models` declares them."""
        d, g = self.dialect, self.number
        statements = []
        for kind, model in READ_MODELS.items():
            table = self.table(kind)
            columns = ", ".join(
                f"{c.name} {d.type(c)}{'' if c.nullable else ' NOT NULL'}" for c in model.columns
            )
            statements.append(
                f"CREATE TABLE IF NOT EXISTS {table} ({columns}, "
                f"PRIMARY KEY ({', '.join(model.key)}))"
            )
            statements += [
                f"CREATE INDEX IF NOT EXISTS {_index(d, f'{kind}_g{g}_{suffix}')} ON {table} "
                f"({', '.join(indexed)})"
                for suffix, indexed in model.indexes.items()
            ]
        return statements

    def add_columns(self, existing: set[str]) -> list[str]:
        """What gives a summary table made by an older version the columns it lacks."""
        return [
            f"ALTER TABLE {self.table('summary')} ADD COLUMN {column.name} "
            f"{self.dialect.type(column)}"
            for column in SUMMARY.added
            if column.name not in existing
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
        columns = READ_MODELS[kind].names
        marks = ", ".join("?" for _ in columns)
        return self.dialect.sql(
            f"INSERT INTO {self.table(kind)} ({', '.join(columns)}) VALUES ({marks})"
        )

    def upsert_summary(self) -> str:
        updates = ", ".join(f"{c} = excluded.{c}" for c in SUMMARY.names[1:])
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
