"""API keys: `Authorization: Bearer KEY` on every request but the health checks.

The key is looked up in the store on every request (`KeyRing.authenticate`, one indexed
query), never cached, so a key revoked with `relledger keys revoke` stops working on
the very next request, on every replica. No key, or one nobody issued (or revoked), is
`Unauthenticated` (401); a valid key whose role does not allow the route is
`Forbidden` (403). An auditor may do all a reader may; a producer may only record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.shared import Shared, shared
from domain.errors import Forbidden, Unauthenticated
from service.keys import ApiKey, Role

_bearer = HTTPBearer(auto_error=False, description="An API key from `relledger keys create`.")

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def require(role: Role) -> Callable[[Credentials, Shared], ApiKey]:
    """A dependency admitting keys whose role allows `role`."""

    def check(credentials: Credentials, store: Annotated[Shared, Depends(shared)]) -> ApiKey:
        if credentials is None:
            raise Unauthenticated("an API key is required: Authorization: Bearer KEY")
        key = store.service.keys.authenticate(credentials.credentials)
        if key is None:
            raise Unauthenticated("unknown or revoked API key")
        if not key.role.allows(role):
            raise Forbidden(f"a {key.role.value} key may not do this (it needs {role.value})")
        return key

    return check
