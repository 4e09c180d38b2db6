"""One check the projection tests share: the read models answer as a fresh fold does."""

from __future__ import annotations

from projections import queries
from projections.replay import Replay
from projections.view import RelationshipView
from projections.views import phase_change_view, standing_view, trust_change_view


def assert_answers_as_folded(view: RelationshipView, found: Replay) -> None:
    """Standing and both histories of `found`'s relationship, from the read models, equal
    those of the fold `found` (a quarantine note aside)."""
    rid = found.relationship_id
    shown = queries.standing(view, rid)
    assert shown is not None, rid
    shown.pop("quarantined", None)
    assert shown == standing_view(rid, found.standing), rid
    assert queries.trust_history(view, rid) == [
        trust_change_view(c) for c in found.scorer.trust_changes
    ], rid
    assert queries.phase_history(view, rid) == [
        phase_change_view(c) for c in found.scorer.phase_changes
    ], rid
