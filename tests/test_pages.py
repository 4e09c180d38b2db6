"""The web pages of `relledger serve`, in a real browser against a real server process.

Chromium (Debian's package, launched by Playwright for Python from /usr/bin/chromium)
opens the pages of one `relledger serve` per backend over the conformance stories, and
the tests check what a user would see: as many chart points as trust changes, phase
bands as the phase history has them, as-of figures as `replay --as-of` gives them, a
broken chain in the header and on its row, what each role may see, no console errors.
Signing in is in `test_page_sessions.py`, what both share in `page_support.py`. Without
Chromium or Playwright the tests skip on a laptop and fail in CI.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from page_support import (
    CAUTIOUS,
    STEADY,
    Site,
    Visit,
    Visitor,
    browser_fixture,  # noqa: F401
    path_of,
    site_fixture,  # noqa: F401
    visit_fixture,  # noqa: F401
)
from tamper import StoredRows

from domain.fold.records import Phase
from projections import queries
from service.keys import Role

CYCLES, TAMPERED = "rnd/0009", "acme/generous"
"""A story with four cycles and a breach; and the one whose stored event the
broken-chain test edits (no other test reads it)."""
FRAUD = "acme/fraud"


def test_the_relationships_page_lists_filters_and_counts(visit: Visit, site: Site) -> None:
    visitor = visit(Role.READER)
    service = site.service
    phases = service.stats(0)["distribution"]["phase"]
    assert visitor.texts("#phase-counts tbody td") == [str(n) for n in phases.values()]
    everything = service.relationships(
        queries.Filters(), sort=queries.SortKey.RELATIONSHIP, descending=False, limit=25, offset=0
    )
    assert visitor.texts("#relationships tbody th") == [
        i["relationship_id"] for i in everything.items
    ]
    assert visitor.page.inner_text("#list-title") == f"{everything.total} relationships"
    visitor.page.select_option("#filter-phase", "expansion")
    visitor.page.select_option("#sort", "trust")
    visitor.page.check("#desc")
    visitor.page.click(".filters button[type=submit]")
    expansion = service.relationships(
        queries.Filters(phase=Phase.EXPANSION),
        sort=queries.SortKey.TRUST,
        descending=True,
        limit=25,
        offset=0,
    )
    assert visitor.texts("#relationships tbody th") == [
        i["relationship_id"] for i in expansion.items
    ]
    visitor.open("/?q=failed-trial")
    assert visitor.texts("#relationships tbody th") == ["acme/failed-trial"]
    visitor.open("/?q=" + STEADY)
    assert visitor.texts("#relationships tbody th") == [STEADY]
    visitor.open("/")
    since, until = (
        datetime.fromisoformat(str(visitor.page.get_attribute(f"#risk-{end}", "datetime")))
        for end in ("since", "until")
    )
    risky = [row["relationship_id"] for row in service.at_risk(since, until, 10)]
    assert visitor.texts("#at-risk tbody th") == risky
    assert visitor.errors == []


@pytest.mark.parametrize("relationship_id", [STEADY, CYCLES, "acme/fraud", "acme/fresh-start"])
def test_the_chart_draws_the_trust_and_phase_histories(
    visit: Visit, site: Site, relationship_id: str
) -> None:
    visitor = visit(Role.READER)
    visitor.open(path_of(relationship_id))
    trust = site.service.trust_history(relationship_id)
    phases = site.service.phase_history(relationship_id)
    points = ".series-1 .point"
    assert visitor.attribute(points, "data-event") == [row["event_id"] for row in trust]
    assert [float(a) for a in visitor.attribute(points, "data-after")] == [
        r["after"] for r in trust
    ]
    assert len(visitor.texts("#trust-table tbody tr")) == len(trust)
    assert visitor.attribute(".band", "data-phase") == [row["to"] for row in phases]
    assert visitor.attribute(".band", "data-event") == [row["event_id"] for row in phases]
    revivals = sum(1 for row in phases if row["rule"] == "revival")
    assert visitor.page.locator(".cycle-mark").count() == revivals
    assert len(visitor.texts("#phase-table tbody tr")) == len(phases)
    lost = site.service.standing(relationship_id)["credibility_lost"]
    assert visitor.page.locator(".cap-mark").count() == (1 if lost else 0)
    visitor.page.locator(points).nth(2).focus()
    detail = visitor.page.inner_text("#point-detail")
    third = trust[2]
    assert f"rule {third['rule']}" in detail and f"{third['before']} -> {third['after']}" in detail
    assert visitor.errors == []


def _header(visitor: Visitor) -> dict[str, str]:
    names = ("trust", "phase", "stage", "connection", "cycle", "events", "retracted", "fairness")
    return {name: visitor.page.inner_text(f"#fig-{name}").strip() for name in names}


def _expected(standing: dict[str, Any]) -> dict[str, str]:
    return {
        "trust": str(standing["trust"]),
        "phase": standing["phase"],
        "stage": standing["stage"],
        "connection": standing["connection"],
        "cycle": str(standing["cycle"]),
        "events": str(standing["events"]),
        "retracted": str(standing["retracted"]),
        "fairness": standing["fairness"]["status"].replace("_", " "),
    }


def test_as_of_redraws_the_page_from_the_replay(visit: Visit, site: Site) -> None:
    visitor = visit(Role.AUDITOR)
    visitor.open(path_of(CYCLES))
    assert _header(visitor) == _expected(site.service.standing(CYCLES))
    now_points = visitor.page.locator(".series-1 .point").count()
    visitor.page.fill("#as_of", "2025-09-30")
    visitor.page.click("#view-form button[type=submit]")
    moment = datetime(2025, 9, 30, 23, 59, 59, tzinfo=UTC)
    replayed = site.service.replay(CYCLES, as_of=moment)
    assert _header(visitor) == _expected(replayed)
    assert "--as-of 2025-09-30T23:59:59Z" in visitor.page.inner_text("#replay-banner")
    points = visitor.page.locator(".series-1 .point").count()
    assert 0 < points < now_points
    assert len(visitor.texts("#trust-table tbody tr")) == points
    shown = visitor.attribute("#events tbody tr", "data-version")
    assert len(shown) == replayed["events"] + replayed["retracted"]
    assert visitor.page.input_value("#as_of") == "2025-09-30"
    assert visitor.errors == []


def test_another_policy_draws_both_lines_and_their_differences(visit: Visit, site: Site) -> None:
    visitor = visit(Role.AUDITOR)
    visitor.open(path_of(FRAUD))
    assert [p["version"] for p in site.service.policies()] == [CAUTIOUS, "v1"]
    visitor.page.select_option("#policy", CAUTIOUS)
    visitor.page.click("#view-form button[type=submit]")
    live = site.service.trust_history(FRAUD)
    other = site.service.replay_histories(FRAUD, policy_name=CAUTIOUS)["trust_changes"]
    assert visitor.attribute(".series-1 .point", "data-event") == [r["event_id"] for r in live]
    assert visitor.attribute(".series-2 .point", "data-event") == [r["event_id"] for r in other]
    after = {r["event_id"]: r["after"] for r in live}
    cautious = {r["event_id"]: r["after"] for r in other}
    differing = [e for e in {**after, **cautious} if after.get(e) != cautious.get(e)]
    assert differing  # slower gains leave the fraud's trust lower after each success
    assert len(visitor.texts("#differences tbody tr.differs")) == len(differing)
    summary = visitor.page.inner_text("#differences-summary")
    assert summary.startswith(f"{len(differing)} of ")
    assert visitor.errors == []


def test_only_an_auditor_opens_the_event_table(visit: Visit, site: Site) -> None:
    reader = visit(Role.READER)
    reader.open(path_of(CYCLES))
    assert reader.page.locator("#events").count() == 0
    assert "need an auditor key" in reader.page.inner_text("#events-refused")
    reader.open(path_of(CYCLES) + "?as_of=2025-09-30")
    assert "need an auditor key" in reader.page.inner_text("#replay-refused")
    assert _header(reader) == _expected(site.service.standing(CYCLES))
    auditor = visit(Role.AUDITOR)
    auditor.open(path_of(CYCLES))
    stored = site.service.events(CYCLES, offset=0, limit=1000)["items"]
    versions = [str(one["version"]) for one in stored]
    assert auditor.attribute("#events tbody tr", "data-version") == versions[:50]
    auditor.page.click(".pager a[rel=next]")
    assert auditor.attribute("#events tbody tr", "data-version") == versions[50:]
    late = sum(1 for one in stored if one["late"])
    assert auditor.page.inner_text("#fig-late") == str(late)
    assert reader.errors == [] and auditor.errors == []


def test_an_edited_event_shows_the_broken_chain(visit: Visit, site: Site) -> None:
    stored = StoredRows(site.store_url)
    rows = stored.rows(TAMPERED)
    stored.edit(rows[1], lambda state: state["interaction"].update(note="edited behind its back"))
    broken = site.service.verify(TAMPERED).breaks
    assert broken
    visitor = visit(Role.AUDITOR)
    visitor.open(path_of(TAMPERED))
    first = min(found.version for found in broken)
    assert visitor.page.inner_text("#chain-status") == f"broken at #{first}"
    row = visitor.page.locator(f"#event-{first}")
    assert "broken" in str(row.get_attribute("class"))
    assert "broken" in row.locator(".chain").inner_text()
    assert visitor.page.locator("tr.broken").count() == len({b.version for b in broken})
    visitor.open(path_of(TAMPERED) + "?as_of=2029-01-01")
    assert f"broken at #{first}" in visitor.page.inner_text("#replay-refused")
    assert visitor.errors == []


def test_the_page_prints_without_its_controls(visit: Visit) -> None:
    visitor = visit(Role.AUDITOR)
    visitor.open(path_of(STEADY))
    visitor.page.emulate_media(media="print")
    for hidden in (".top", "#view-form", "#point-detail"):
        assert visitor.page.locator(hidden).is_hidden()
    for shown in ("#summary", "#trust-chart", "#trust-table", "#fairness-table", "#events"):
        assert visitor.page.locator(shown).is_visible()
    assert visitor.page.pdf()[:4] == b"%PDF"


def test_every_control_is_labelled_and_every_chart_has_a_table(visit: Visit) -> None:
    visitor = visit(Role.AUDITOR)
    for path in ("/", path_of(CYCLES)):
        visitor.open(path)
        fields = visitor.page.locator("main input:not([type=hidden]), main select").all()
        assert fields
        for one in fields:
            assert visitor.page.locator(f"label[for='{one.get_attribute('id')}']").count() == 1
    for chart, table in (("#trust-chart", "#trust-table"), ("#fairness-chart", "#fairness-table")):
        assert visitor.page.locator(chart).count() == 1 == visitor.page.locator(table).count()
    assert visitor.page.locator(".point[tabindex='0'][aria-label]").count() == len(
        visitor.page.locator(".point").all()
    )


def test_no_page_logs_a_console_error(visit: Visit) -> None:
    paths = [
        "/",
        "/?phase=exploration&sort=trust&desc=1&page=2",
        path_of(CYCLES),
        path_of(CYCLES) + "?as_of=2026-01-01&page=1",
        path_of(STEADY) + "?policy=v1",
        path_of(CYCLES) + "?page=2",
    ]
    for role in (Role.READER, Role.AUDITOR):
        visitor = visit(role)
        for path in paths:
            assert visitor.open(path) == 200, path
            if visitor.page.locator(".point").count():
                visitor.page.locator(".point").last.hover()
                assert "event " in visitor.page.inner_text("#point-detail")
        assert visitor.errors == [], role
    stranger = visit(None)
    stranger.open("/login")
    assert stranger.errors == []


def test_an_unknown_relationship_is_a_page_saying_so(visit: Visit) -> None:
    visitor = visit(Role.READER)
    assert visitor.open(path_of("acme/nobody")) == 404
    assert "acme/nobody" in visitor.page.inner_text("#error-detail")
    assert visitor.open("/?phase=bogus") == 422
    assert "phase" in visitor.page.inner_text("#error-detail")
    assert visitor.open("/?page=99999999999999999999") == 422  # not "the store failed"
    assert "is not a page number" in visitor.page.inner_text("#error-detail")
