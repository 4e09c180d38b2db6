"""The projector's working state: one page's rows, and the bounded cache of fold states.

Both live only in memory; the projector writes a page in one transaction and may
drop the cache at any time (it is rebuilt from the summary rows' stored state).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Container, Iterable
from dataclasses import dataclass, field

from domain.fold.scorer import Scorer
from domain.stored import LoggedInteraction, UnreadableRecord
from projections.quarantine import Quarantined
from projections.read_models import Row


@dataclass
class FoldCache:
    """Bounded LRU of fold states, valid only for one (generation, position) lineage."""

    size: int
    scorers: OrderedDict[str, Scorer] = field(default_factory=OrderedDict)

    def get(self, relationship_id: str) -> Scorer | None:
        scorer = self.scorers.get(relationship_id)
        if scorer is not None:
            self.scorers.move_to_end(relationship_id)
        return scorer

    def put(self, relationship_id: str, scorer: Scorer) -> None:
        self.scorers[relationship_id] = scorer
        self.scorers.move_to_end(relationship_id)
        while len(self.scorers) > self.size:
            self.scorers.popitem(last=False)

    def forget(self, relationship_ids: Iterable[str]) -> None:
        for relationship_id in relationship_ids:
            self.scorers.pop(relationship_id, None)

    def clear(self) -> None:
        self.scorers.clear()


@dataclass
class Page:
    """One transaction's work: the log entries, the rows they give, the position they
    reach, and the relationships that failed (to salvage) or were quarantined."""

    entries: list[LoggedInteraction | UnreadableRecord]
    position: int
    summaries: list[Row] = field(default_factory=list)
    trust: list[Row] = field(default_factory=list)
    phases: list[Row] = field(default_factory=list)
    failed: dict[str, None] = field(default_factory=dict)
    quarantined: list[Quarantined] = field(default_factory=list)

    def drop(self, relationship_ids: Container[str]) -> None:
        """Leave these relationships' rows out (every row starts with its relationship_id)."""
        for rows in (self.summaries, self.trust, self.phases):
            rows[:] = [row for row in rows if row[0] not in relationship_ids]

    def by_relationship(self) -> dict[str, tuple[list[Row], list[Row], list[Row]]]:
        grouped: dict[str, tuple[list[Row], list[Row], list[Row]]] = {}
        for kind, rows in enumerate((self.summaries, self.trust, self.phases)):
            for row in rows:
                grouped.setdefault(row[0], ([], [], []))[kind].append(row)
        return grouped

    def events_of(self, relationship_id: str) -> list[LoggedInteraction]:
        return [
            entry
            for entry in self.entries
            if isinstance(entry, LoggedInteraction) and entry.relationship_id == relationship_id
        ]
