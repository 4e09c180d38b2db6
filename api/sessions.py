"""Signed session cookies for the web pages, and the CSRF token each one carries.

The JSON API takes a bearer key on every request; a browser cannot, so the pages ask
for the key once (the login form) and keep who signed in in a cookie. The cookie holds
the key's name and public id, never the key: it is signed (itsdangerous, HMAC-SHA1
over a key derived from the secret) so that it cannot be forged or edited, but not
encrypted. A copied cookie is a session until it expires; it never gives the key away.
Every request looks the named key up in the store again (`signed_in`), so a key
revoked with `relledger keys revoke` ends its sessions at once, as it ends its API calls.

The cookie is HttpOnly (no script reads it), Path=/, and SameSite=Lax: a link to a
relationship page followed from a ticket or a mail opens signed in, while a form posted
from another site arrives without the cookie. Lax is enough because every GET is a read;
the two forms that change something (login, logout) also carry the session's random
CSRF token, compared in constant time. The cookie is marked Secure when the request
came over HTTPS. A session ends `MAX_AGE_S` after it began, however busy (the cookie
is signed once, not renewed by each page).

The signing secret is `RELLEDGER_SESSION_SECRET`, or else 32 random bytes drawn when
the server starts: sessions then end when the process restarts, and replicas behind one
address need the variable set to the same value to accept each other's cookies.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from service.keys import ApiKey, KeyRing, Role

COOKIE = "relledger_session"
SECRET_ENV = "RELLEDGER_SESSION_SECRET"
MAX_AGE_S = 8 * 3600
"""A working day: long enough not to interrupt an audit, short enough to end by itself."""
SALT = "relledger.pages.session"
PAGE_ROLES = (Role.READER, Role.AUDITOR)
"""Who may sign in to the pages: producers only record, and the pages only read."""


@dataclass(frozen=True)
class Session:
    """What the cookie holds: the CSRF token, and the key signed in with (if any)."""

    csrf: str
    key_name: str | None = None
    key_id: str | None = None

    @classmethod
    def fresh(cls, key: ApiKey | None = None) -> Session:
        """A new session with a new token (a sign-in always gets one: no fixation)."""
        token = secrets.token_urlsafe(32)
        if key is None:
            return cls(token)
        return cls(token, key.name, key.key_id)

    def accepts(self, presented: str | None) -> bool:
        """Whether a form's token is this session's (constant-time comparison)."""
        return presented is not None and hmac.compare_digest(self.csrf.encode(), presented.encode())


class Sessions:
    """Reads and writes the signed session cookie."""

    def __init__(self, secret: str | bytes) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=SALT)

    @classmethod
    def from_environment(cls) -> Sessions:
        """Signed with `RELLEDGER_SESSION_SECRET`, or a random secret for this process."""
        return cls(os.environ.get(SECRET_ENV) or secrets.token_bytes(32))

    def read(self, request: Request) -> Session | None:
        """The request's session, or None if it has none, or one that is forged,
        tampered with or expired."""
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            return None
        try:
            found: Any = self._serializer.loads(cookie, max_age=MAX_AGE_S)
        except BadSignature:
            return None
        if not isinstance(found, dict) or not isinstance(found.get("csrf"), str):
            return None
        name, key_id = found.get("name"), found.get("key_id")
        if not (isinstance(name, str) and isinstance(key_id, str)):
            return Session(found["csrf"])
        return Session(found["csrf"], name, key_id)

    def write(self, request: Request, response: Response, session: Session) -> None:
        payload: dict[str, str] = {"csrf": session.csrf}
        if session.key_name is not None and session.key_id is not None:
            payload.update(name=session.key_name, key_id=session.key_id)
        response.set_cookie(
            COOKIE,
            self._serializer.dumps(payload),
            max_age=MAX_AGE_S,
            path="/",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )

    def clear(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")


def signed_in(session: Session | None, keys: KeyRing) -> ApiKey | None:
    """The active key the session was signed in with, looked up in the store now; None
    if it was revoked since (or the session has no key)."""
    if session is None or session.key_name is None:
        return None
    for key in keys.list():
        if key.name == session.key_name:
            usable = key.active and key.key_id == session.key_id and key.role in PAGE_ROLES
            return key if usable else None
    return None
