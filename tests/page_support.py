"""What the page tests share: `relledger serve` over the conformance stories with a key
per role (the `site` fixture, one per test module and backend), Chromium launched by
Playwright for Python (`browser`), and visitors, each its own browser context, signed in
with a role's key or not at all (`visit`).

Chromium is Debian's package, from /usr/bin/chromium (or $RELLEDGER_CHROMIUM). Without
Chromium or Playwright the tests skip on a laptop and fail in CI.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from api_server import running
from conformance import ingest_file
from conftest import fresh_postgres_schema
from servers import unavailable

from service.keys import Role
from service.ledger_service import LedgerService
from service.schema import migrate

try:
    from playwright.sync_api import Browser, Page, sync_playwright

    PLAYWRIGHT = True
except ImportError:  # the browser fixture says what is missing
    PLAYWRIGHT = False

CHROMIUM = os.environ.get("RELLEDGER_CHROMIUM", "/usr/bin/chromium")
STEADY = "acme/steady"
"""A committed story with late events."""

LIVE_POLICY = Path(__file__).parents[1] / "domain" / "policies" / "v1.toml"
CAUTIOUS = "cautious"


def path_of(relationship_id: str) -> str:
    return "/relationships/" + relationship_id.replace("/", "%2F")


@dataclass
class Site:
    url: str
    store_url: str
    service: LedgerService
    keys: dict[Role, str]


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    name="site",
)
def site_fixture(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """`relledger serve` over a store holding the conformance stories, a key per role."""
    folder = tmp_path_factory.mktemp("pages")
    if request.param == "sqlite":
        yield from _serving(f"sqlite:///{folder}/ledger.db", folder)
        return
    with fresh_postgres_schema() as url:
        yield from _serving(url, folder)


def _serving(url: str, folder: Path) -> Iterator[Site]:
    migrate(url)
    service = LedgerService.open(url)
    ingest_file(service.ledger)
    service.catch_up()
    # The store also knows a more cautious policy its read models were once built under.
    cautious = folder / "cautious.toml"
    cautious.write_text(
        LIVE_POLICY.read_text()
        .replace('version = "v1"', f'version = "{CAUTIOUS}"')
        .replace("gain_rate = 5.0", "gain_rate = 3.0")
    )
    service.rebuild(cautious, check=False)
    service.rebuild(LIVE_POLICY, check=False)
    keys = {role: service.keys.create(role, f"pages-{role.value}") for role in Role}
    with running(url, folder / "serve.log") as server:
        yield Site(server.url, url, service, keys)
    service.close()


@pytest.fixture(scope="module", name="browser")
def browser_fixture() -> Iterator[Browser]:
    if not PLAYWRIGHT:
        unavailable(
            "Playwright for Python is not installed (pip install -e '.[test]')", "the pages"
        )
    if not Path(CHROMIUM).exists():
        unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)", "the pages")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@dataclass
class Visitor:
    """One browser context (its own cookies) and the console errors its pages logged."""

    site: Site
    page: Page
    errors: list[str] = field(default_factory=list)

    def open(self, path: str) -> int:
        answer = self.page.goto(self.site.url + path)
        assert answer is not None
        return answer.status

    def sign_in(self, key: str) -> None:
        self.open("/login")
        self.page.fill("#key", key)
        self.page.click("form.login button[type=submit]")

    def texts(self, selector: str) -> list[str]:
        return [text.strip() for text in self.page.locator(selector).all_inner_texts()]

    def attribute(self, selector: str, name: str) -> list[str]:
        return [str(one.get_attribute(name)) for one in self.page.locator(selector).all()]


Visit = Callable[[Role | None], Visitor]


@pytest.fixture(name="visit")
def visit_fixture(browser: Browser, site: Site) -> Iterator[Visit]:
    """Make a visitor, signed in with `role`'s key (or not signed in: None)."""
    contexts = []

    def make(role: Role | None) -> Visitor:
        context = browser.new_context()
        contexts.append(context)
        visitor = Visitor(site, context.new_page())
        visitor.page.on(
            "console", lambda m: visitor.errors.append(m.text) if m.type == "error" else None
        )
        visitor.page.on("pageerror", lambda error: visitor.errors.append(str(error)))
        if role is not None:
            visitor.sign_in(site.keys[role])
            assert visitor.page.url == site.url + "/"
        return visitor

    yield make
    for context in contexts:
        context.close()
