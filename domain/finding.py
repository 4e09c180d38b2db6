"""How a batch finds the relationships it touches, with as few queries as it can.

Loading relationships one by one through the repository costs two queries each (its
latest snapshot, then its events after it), and most of them find nothing when a batch
opens many new relationships, or find a handful of events when the store holds more
relationships than the cache. So a batch asks the store once which of its uncached
relationships exist and how long each is: a new one then costs nothing more, and those
too short to have a snapshot are projected from their events, read in one query for
them all, with the library's own mapper and `project_aggregate`, as the repository
would. A longer one loads from its snapshot through the repository (`find_one`), as
does one whose events could not be made into a relationship here, so that the
repository's path says what is wrong with it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import project_aggregate
from eventsourcing.persistence import Mapper, StoredEvent

from domain.contract import Interaction
from domain.relationship import SNAPSHOT_EVERY, Relationship, relationship_uuid
from domain.stored import RelationshipReader

Find = Callable[[str, UUID], Relationship | None]
"""relationship_id, aggregate id -> the relationship, or None if it is new."""


def batch_finder(
    items: Sequence[Interaction],
    *,
    cache: Any,
    reader: RelationshipReader,
    mapper: Mapper[UUID],
    find_one: Find,
) -> Find:
    """How the batch of `items` finds its relationships (see the module's docstring)."""
    uncached = {relationship_uuid(item.relationship_id) for item in items}
    if cache is not None:
        uncached = {aggregate_id for aggregate_id in uncached if not _cached(cache, aggregate_id)}
    heads = reader.heads(uncached) if uncached else {}
    short = [aggregate_id for aggregate_id, head in heads.items() if head < SNAPSHOT_EVERY]
    made = _made_from_events(short, reader, mapper)

    def find(relationship_id: str, aggregate_id: UUID) -> Relationship | None:
        if aggregate_id in uncached and aggregate_id not in heads:
            return None
        return made.get(aggregate_id) or find_one(relationship_id, aggregate_id)

    return find


def _made_from_events(
    aggregate_ids: Collection[UUID], reader: RelationshipReader, mapper: Mapper[UUID]
) -> dict[UUID, Relationship]:
    if not aggregate_ids:
        return {}
    by_relationship: dict[UUID, list[StoredEvent]] = {}
    for stored in reader.stored_events(aggregate_ids):
        by_relationship.setdefault(UUID(str(stored.originator_id)), []).append(stored)
    made: dict[UUID, Relationship] = {}
    for aggregate_id, stored_events in by_relationship.items():
        try:
            aggregate = project_aggregate(None, map(mapper.to_domain_event, stored_events))
        except Exception:  # left to the repository, which names what it cannot load
            continue
        if isinstance(aggregate, Relationship):
            made[aggregate_id] = aggregate
    return made


def _cached(cache: Any, aggregate_id: UUID) -> bool:
    try:
        cache.get(aggregate_id)
    except KeyError:
        return False
    return True
