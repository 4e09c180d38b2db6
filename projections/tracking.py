"""Whether a generation's tracking record agrees with its rows and with the log.

The projector trusts the tracking record (the log position a generation reached) to
know where to resume. Set back by hand, it makes the projector fold events a second
time on top of rows that already hold them (the history rows then collide); set past
the log's last event, it makes every new event be skipped, silently. Both are found
by comparing it with the furthest position its rows name and with the log's head, in
one statement (one snapshot, so a page committed meanwhile cannot fake either), and
both are repaired the same way: a rebuild from position 0 in a new generation.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import Damaged
from domain.ledger import RelationshipLedger
from projections.eventlog import events_table, position_column
from projections.tables import Generation
from projections.view import RelationshipView

REPAIR = "run relledger projections rebuild --from-zero"


class TrackingDamaged(Damaged):
    """A generation's tracking record contradicts its rows or the log."""


@dataclass(frozen=True)
class Positions:
    tracked: int
    """Where the tracking record says the generation reached."""
    written: int
    """The furthest log position its rows (summaries, quarantine records) name."""
    head: int
    """The log's last position."""

    def problem(self) -> str | None:
        """What is wrong, in one line with the repair, or None."""
        if self.tracked > self.head:
            return (
                f"the read models' tracking record says position {self.tracked}, past the "
                f"log's last event at {self.head}: it was moved by hand (or events were "
                f"removed from the log), and new events would be skipped; {REPAIR}"
            )
        if self.written > self.tracked:
            return (
                f"the read models hold rows up to position {self.written} but their "
                f"tracking record says {self.tracked}: it was moved back by hand, and "
                f"projecting would fold those events a second time; {REPAIR}"
            )
        return None


def positions(
    view: RelationshipView, ledger: RelationshipLedger, generation: Generation
) -> Positions:
    dialect = view.dialect
    log = dialect.name(events_table(ledger))
    found = view.query(
        f"SELECT (SELECT MAX(notification_id) FROM {view.tracking_table()} "
        "WHERE application_name = ?) AS tracked, "
        f"(SELECT MAX(position) FROM {generation.table('summary')}) AS summaries, "
        f"(SELECT MAX(position) FROM {generation.table('quarantine')}) AS quarantined, "
        f"(SELECT MAX({position_column(dialect)}) FROM {log}) AS head",
        [generation.tracking_name],
    )[0]
    return Positions(
        tracked=int(found["tracked"] or 0),
        written=max(int(found["summaries"] or 0), int(found["quarantined"] or 0)),
        head=int(found["head"] or 0),
    )


def check_tracking(
    view: RelationshipView, ledger: RelationshipLedger, generation: Generation
) -> None:
    """Raise `TrackingDamaged` if `generation`'s tracking record cannot be resumed from."""
    problem = positions(view, ledger, generation).problem()
    if problem is not None:
        raise TrackingDamaged(problem)
