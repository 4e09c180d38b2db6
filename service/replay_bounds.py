"""The questions a replay cannot answer truthfully, refused instead of answered empty.

A replay `as of` a moment before a relationship's first interaction, or `after the
first N records` when it has fewer, used to answer with a standing of zero events:
a figure that looks like an answer (trust at its initial value, phase none) for a
relationship that did not exist then, or a history that does not reach that far.
An auditor must see the difference between "nothing had happened yet" and "this is
how it stood", so these are errors that say which (exit 2 from the CLI).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from domain.errors import Invalid, NotFound
from domain.stored import StoredInteraction


class NotYet(NotFound):
    """The relationship had no interaction yet at the moment asked about."""


class BeyondLastRecord(Invalid):
    """A record number past the relationship's last record."""


def check_replay_bounds(
    stored: Sequence[StoredInteraction], as_of: datetime | None, version: int | None
) -> None:
    """Refuse `version` beyond the last of `stored` (one relationship's records, in
    order), and `as_of` before the earliest `occurred_at` among the records replayed."""
    if not stored:
        return
    relationship_id = stored[0].relationship_id
    last = stored[-1].version
    if version is not None and version > last:
        raise BeyondLastRecord(
            f"{relationship_id!r} has {last} record(s): version {version} is beyond its "
            f"last record ({last})"
        )
    if as_of is None:
        return
    replayed = stored if version is None else stored[:version]
    first = min(datetime.fromisoformat(one.record["occurred_at"]) for one in replayed)
    if as_of < first:
        raise NotYet(
            f"{relationship_id!r} did not exist yet as of {as_of.isoformat()} "
            f"(its first interaction occurred at {first.isoformat()})"
        )
