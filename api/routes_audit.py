"""Routes that audit from the stored events themselves (role `auditor`).

`replay` uses the live policy, or another the store knows by its version name
(`/v1/policies` lists them); the server reads no policy files on a client's behalf. It
verifies the events it replays first, as `relledger replay` does: a broken history is a
409 naming the break, unless the client asks for `verify=false` (then `verified` is
false in the answer).
A verify answer is 200 whether or not the chains are intact: `intact` and `breaks`
are the finding.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime

from api.auth import require
from api.paths import relationship_id
from api.shared import Shared, shared
from service.keys import Role

Store = Annotated[Shared, Depends(shared)]
RelId = Annotated[str, Depends(relationship_id)]

router = APIRouter(tags=["audit"], dependencies=[Depends(require(Role.AUDITOR))])


@router.get("/v1/relationships/{relationship_id}/replay")
def replay(
    store: Store,
    rel: RelId,
    as_of: Annotated[
        AwareDatetime | None, Query(description="Only events that occurred at or before.")
    ] = None,
    version: Annotated[int | None, Query(ge=1, description="Only the first N records.")] = None,
    policy: Annotated[
        str | None, Query(description="A policy the store knows, by version (default: live).")
    ] = None,
    verify: Annotated[
        bool,
        Query(
            description="Verify the events replayed first (409 if they fail); false replays "
            "them anyway, answered with `verified: false`."
        ),
    ] = True,
) -> dict[str, Any]:
    """The relationship recomputed from its stored events (the standing's shape, and
    `verified`)."""
    return store.service.replay(
        rel, as_of=as_of, version=version, policy_name=policy, verify=verify
    )


@router.get("/v1/relationships/{relationship_id}/events")
def events(
    store: Store,
    rel: RelId,
    offset: Annotated[int, Query(ge=0, description="Skip this many first.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size.")] = 100,
) -> dict[str, Any]:
    """Its stored interactions in chain order, with version, chain hash and late flag;
    `next` is the offset of the next page (null at the end)."""
    return store.service.events(rel, offset=offset, limit=limit)


@router.get("/v1/relationships/{relationship_id}/verify")
def verify_one(store: Store, rel: RelId) -> dict[str, Any]:
    """Its hash chain recomputed from the stored records (as `relledger verify --json`)."""
    return store.service.verify(rel).view()


@router.get("/v1/verify")
def verify_all(store: Store) -> dict[str, Any]:
    """Every hash chain recomputed from the stored records, and the whole ledger compared
    with the latest checkpoint kept in the store (as `relledger verify --json`)."""
    return store.service.verify_ledger().view()
