"""Routes answered from the read models (role `reader`, or `auditor`), and the health
checks (no key).

Each answer is the service's, in the shape the CLI's `--json` prints. A standing
carries a weak ETag (a hash of its body), so a client polling one relationship gets
a bodiless 304 while nothing changed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime

from api.auth import require
from api.paths import relationship_id
from api.render import json_bytes
from api.shared import Shared, shared
from domain.errors import Invalid, Unavailable
from domain.fold.fairness import FairnessStatus
from domain.fold.records import Connection, Phase
from domain.fold.stage import Stage
from projections import queries
from service.keys import Role

Store = Annotated[Shared, Depends(shared)]
RelId = Annotated[str, Depends(relationship_id)]
JSON = dict[str, Any]

health = APIRouter(tags=["health"])
router = APIRouter(tags=["read models"], dependencies=[Depends(require(Role.READER))])


@health.get("/healthz")
def healthz() -> JSON:
    """The process is up (nothing else is checked)."""
    return {"status": "ok"}


@health.get(
    "/readyz",
    responses={
        503: {"description": "The store cannot be reached, or the read models are damaged."}
    },
)
def readyz(store: Store) -> JSON:
    """The store answers and the read models can follow it; `lag` is how many events the
    read models are behind the log."""
    found = store.service.status(limit=0)
    if found.problem is not None:  # a tracking record moved by hand: not fit to serve
        raise Unavailable(found.problem)
    return {"status": "ready", "position": found.position, "head": found.head, "lag": found.lag}


@router.get("/v1/relationships")
def relationships(
    store: Store,
    phase: Phase | None = None,
    stage: Stage | None = None,
    connection: Connection | None = None,
    fairness: FairnessStatus | None = None,
    party: Annotated[
        str | None, Query(description="A supplier or customer name: its relationships.")
    ] = None,
    sort: queries.SortKey = queries.SortKey.RELATIONSHIP,
    desc: bool = False,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
    cursor: Annotated[
        str | None, Query(description="`next` of the previous page (same filters and sort).")
    ] = None,
) -> JSON:
    """A page of relationships, filtered and sorted; `next` is null on the last page."""
    offset = _offset(cursor)
    found = store.service.relationships(
        queries.Filters(phase, stage, connection, fairness, party),
        sort=sort,
        descending=desc,
        limit=limit,
        offset=offset,
    )
    return found.view(_cursor)


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o{offset}".encode()).decode().rstrip("=")


MAX_OFFSET = 2**62
"""Beyond any store's size, and within the databases' 64-bit integers."""


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if text.startswith("o") and text[1:].isdigit() and int(text[1:]) <= MAX_OFFSET:
            return int(text[1:])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise Invalid(f"cursor: {cursor[:40]!r} is not a cursor this API gave")


@router.get(
    "/v1/relationships/{relationship_id}",
    responses={304: {"description": "Unchanged since the ETag in If-None-Match."}},
)
def standing(request: Request, store: Store, rel: RelId) -> Response:
    """Where it stands now (as `relledger show --json`), with a weak ETag."""
    body = json_bytes(store.service.standing(rel))
    tag = f'W/"{hashlib.sha256(body).hexdigest()[:32]}"'
    if _matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers={"ETag": tag})
    return Response(body, media_type="application/json", headers={"ETag": tag})


def _matches(header: str | None, tag: str) -> bool:
    """If-None-Match's weak comparison: any listed tag (or `*`) equal, `W/` aside."""
    if header is None:
        return False
    listed = {part.strip().removeprefix("W/") for part in header.split(",")}
    return "*" in listed or tag.removeprefix("W/") in listed


@router.get("/v1/relationships/{relationship_id}/trust-history")
def trust_history(store: Store, rel: RelId) -> list[JSON]:
    """Every trust change in order, with the event and rule that caused it."""
    return store.service.trust_history(rel)


@router.get("/v1/relationships/{relationship_id}/phase-history")
def phase_history(store: Store, rel: RelId) -> list[JSON]:
    """Every phase change in order, with the event and rule that caused it."""
    return store.service.phase_history(rel)


@router.get("/v1/at-risk")
def at_risk(
    store: Store,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
) -> list[JSON]:
    """Relationships whose trust fell most in a period, with the events that caused it."""
    return store.service.at_risk(since, until, limit)


@router.get("/v1/stats")
def stats(store: Store, outliers: Annotated[int, Query(ge=0, le=1000)] = 5) -> JSON:
    """Counts by phase, stage, connection and fairness; the most one-sided exchanges."""
    return store.service.stats(outliers)


@router.get("/v1/projections/status")
def status(store: Store, limit: Annotated[int, Query(ge=0, le=10_000)] = 100) -> JSON:
    """The live generation, its policy, its lag behind the log, the quarantined."""
    return store.service.status(limit).view()


@router.get("/v1/policies")
def policies(store: Store) -> list[JSON]:
    """The scoring policies this store knows, with their rules: the live one."""
    return store.service.policies()
