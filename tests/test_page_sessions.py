"""Signing in to the web pages of `relledger serve`, in a real browser against a real
server process: who may sign in, what the session cookie holds, signing out, forms
without the session's token refused, and a revoked key's sessions ended.
"""

from __future__ import annotations

from page_support import (
    STEADY,
    Site,
    Visit,
    browser_fixture,  # noqa: F401
    path_of,
    site_fixture,  # noqa: F401
    visit_fixture,  # noqa: F401
)

from service.keys import Role


def test_signing_in_and_out(visit: Visit, site: Site) -> None:
    visitor = visit(None)
    assert visitor.open(path_of(STEADY)) == 200
    assert visitor.page.url.startswith(site.url + "/login?next=")
    visitor.page.fill("#key", "rl_not-a-key")
    visitor.page.click("form.login button[type=submit]")
    assert "Unknown or revoked key" in visitor.page.inner_text("#login-error")
    visitor.page.fill("#key", site.keys[Role.PRODUCER])
    visitor.page.click("form.login button[type=submit]")
    assert "producer key cannot sign in" in visitor.page.inner_text("#login-error")
    visitor.page.fill("#key", site.keys[Role.READER])
    visitor.page.click("form.login button[type=submit]")
    assert visitor.page.url == site.url + path_of(STEADY)
    assert "pages-reader" in visitor.page.inner_text(".who")
    (cookie,) = visitor.page.context.cookies()
    assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Lax")
    assert site.keys[Role.READER] not in cookie["value"]
    visitor.page.click(".signout button")
    assert visitor.page.url == site.url + "/login"
    visitor.open("/")
    assert visitor.page.url.startswith(site.url + "/login")
    assert visitor.errors == []


def test_forms_without_the_session_token_are_refused(visit: Visit, site: Site) -> None:
    visitor = visit(Role.READER)
    forged = visitor.page.request.post(site.url + "/logout", form={"csrf": "guessed"})
    assert forged.status == 403
    assert visitor.open("/") == 200 and "pages-reader" in visitor.page.inner_text(".who")
    stranger = visitor.page.context.browser
    assert stranger is not None
    elsewhere = stranger.new_context()
    answer = elsewhere.request.post(
        site.url + "/login", form={"key": site.keys[Role.READER], "csrf": "x", "next": "/"}
    )
    assert answer.status == 403
    assert elsewhere.request.get(site.url + "/", max_redirects=0).status == 303
    elsewhere.close()


def test_a_revoked_key_ends_its_sessions(visit: Visit, site: Site) -> None:
    key = site.service.keys.create(Role.READER, "pages-revoked")
    visitor = visit(None)
    visitor.sign_in(key)
    assert visitor.open(path_of(STEADY)) == 200 and visitor.page.url.endswith(path_of(STEADY))
    site.service.keys.revoke("pages-revoked")
    visitor.open(path_of(STEADY))
    assert visitor.page.url.startswith(site.url + "/login")
