"""The web pages of `relledger serve`: the relationships, and one relationship's history.

Server-rendered HTML (Jinja2 templates in `api/templates`, autoescaped) over the same
`LedgerService` the JSON API answers from, with every asset served from `/static` by
this process: the pages work with no internet, and a strict Content-Security-Policy
(`'self'` only, no inline script or style) holds them to it. The charts are SVG drawn
by the server (`api.charts`), each with a table of the same figures; the only script
shows a focused or hovered point's details, and the pages work without it.

Signing in takes an API key of role reader or auditor (`api.sessions`): a reader sees
the read models, an auditor also the stored events and the replays (as of a moment,
under a stored policy). A visitor without a session is sent to the login form; the
pages are left out of the OpenAPI document, which describes the JSON API alone.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qs, quote, urlencode

from eventsourcing.persistence import PersistenceError
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.concurrency import run_in_threadpool

from api.errors import status_of, store_failed
from api.page_views import relationship_page
from api.paths import relationship_id
from api.sessions import PAGE_ROLES, Session, Sessions, signed_in
from api.shared import Shared, shared
from domain.errors import Invalid, LedgerError, NotFound
from domain.fold.fairness import FairnessStatus
from domain.fold.records import Connection, Phase
from domain.fold.stage import Stage
from projections import queries
from service.keys import ApiKey, Role

HERE = Path(__file__).parent
STATIC = {"pages.css": "text/css", "pages.js": "text/javascript", "favicon.svg": "image/svg+xml"}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
FORM_LIMIT = 8192
"""The login and logout forms are a key and a token: a longer body is refused unread."""
PAGE_SIZE = 25
MAX_PAGE = 10**9
"""Far past any store; larger numbers would overflow the offset the database is given."""
AT_RISK_DAYS = 90
AT_RISK_SHOWN = 10

router = APIRouter(include_in_schema=False)
Store = Annotated[Shared, Depends(shared)]
RelId = Annotated[str, Depends(relationship_id)]
SESSIONS = Sessions.from_environment()
TEMPLATES = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.filters["rel_path"] = lambda rid: "/relationships/" + quote(str(rid), safe="")
E = TypeVar("E", bound=enum.Enum)


def _render(
    request: Request,
    name: str,
    *,
    session: Session,
    key: ApiKey | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    body = TEMPLATES.get_template(name).render(
        key=key, csrf=session.csrf, path=request.url.path, **context
    )
    response = HTMLResponse(body, status_code=status, headers=HEADERS)
    if SESSIONS.read(request) != session:
        # Only a new session is written: re-signing on every page would make the
        # lifetime slide, and a session must end MAX_AGE_S after it began.
        SESSIONS.write(request, response, session)
    return response


def _visitor(request: Request, store: Shared) -> tuple[Session, ApiKey | None]:
    session = SESSIONS.read(request)
    key = signed_in(session, store.service.keys)
    return session or Session.fresh(), key


def _to_login(request: Request) -> RedirectResponse:
    there = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?{urlencode({'next': there})}", status_code=303)


def _page(request: Request, store: Shared, draw: Callable[[Session, ApiKey], Response]) -> Response:
    """A signed-in page: `draw` it, or send the visitor to sign in; a failure is an
    HTML page with the status the JSON API would answer."""
    session, key = _visitor(request, store)
    if key is None:
        return _to_login(request)
    try:
        return draw(session, key)
    except LedgerError as error:
        return _failure(request, session, key, status_of(error), str(error))
    except PersistenceError as error:
        failed = store_failed(error)
        return _failure(request, session, key, status_of(failed), str(failed))


def _failure(
    request: Request, session: Session, key: ApiKey | None, status: int, detail: str
) -> HTMLResponse:
    return _render(request, "error.html", session=session, key=key, status=status, detail=detail)


def _local(target: str | None) -> str:
    """Where to go after signing in: a path of this site, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/static/{name}")
def static(name: str) -> Response:
    if name not in STATIC:
        raise NotFound(f"no static file {name!r}")
    return FileResponse(HERE / "static" / name, media_type=STATIC[name])


@router.get("/login")
def login_form(
    request: Request, store: Store, target: Annotated[str, Query(alias="next")] = "/"
) -> Response:
    session, key = _visitor(request, store)
    if key is not None:
        return RedirectResponse(_local(target), status_code=303)
    return _render(request, "login.html", session=session, key=None, next=_local(target))


async def _form(request: Request) -> dict[str, str]:
    """A urlencoded form of at most `FORM_LIMIT` bytes (first value of each field)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_LIMIT:
            raise Invalid("the form is too large")
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


@router.post("/login")
async def login(request: Request, store: Store) -> Response:
    form = await _form(request)
    session = SESSIONS.read(request)
    target = _local(form.get("next"))

    def again(error: str, status: int = 200) -> Response:
        # A refused key re-renders the form (200, as form errors are): a browser logs
        # every 4xx page as a console error. A forged form is refused outright (403).
        fresh = Session.fresh()
        return _render(
            request, "login.html", session=fresh, key=None, status=status, next=target, error=error
        )

    if session is None or not session.accepts(form.get("csrf")):
        return again("This form expired or was not sent from this site: sign in again.", 403)
    key = await run_in_threadpool(store.service.keys.authenticate, form.get("key", "").strip())
    if key is None:
        return again("Unknown or revoked key.")
    if key.role not in PAGE_ROLES:
        return again(f"A {key.role.value} key cannot sign in: use a reader or auditor key.")
    response = RedirectResponse(target, status_code=303)
    SESSIONS.write(request, response, Session.fresh(key))
    return response


@router.post("/logout")
async def logout(request: Request, store: Store) -> Response:
    form = await _form(request)
    session = SESSIONS.read(request)
    if session is None or not session.accepts(form.get("csrf")):
        key = await run_in_threadpool(signed_in, session, store.service.keys)
        detail = "This form expired or was not sent from this site: nothing was done."
        return _failure(request, session or Session.fresh(), key, 403, detail)
    response = RedirectResponse("/login", status_code=303)
    SESSIONS.clear(response)
    return response


def _choice(kind: type[E], value: str | None, name: str) -> E | None:
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(str(member.value) for member in kind)
        raise Invalid(f"{name}: {value!r} is not one of {allowed}") from None


def _listing_query(params: Mapping[str, str], **changes: str | None) -> str:
    merged = {**params, **changes}
    return "?" + urlencode({name: value for name, value in merged.items() if value})


@router.get("/")
def index(request: Request, store: Store) -> Response:
    params = {name: value for name, value in request.query_params.items() if value}

    def draw(session: Session, key: ApiKey) -> Response:
        service = store.service
        search = params.get("q", "").strip()
        filters = queries.Filters(
            _choice(Phase, params.get("phase"), "phase"),
            _choice(Stage, params.get("stage"), "stage"),
            _choice(Connection, params.get("connection"), "connection"),
            _choice(FairnessStatus, params.get("fairness"), "fairness"),
        )
        sort = _choice(queries.SortKey, params.get("sort"), "sort") or queries.SortKey.RELATIONSHIP
        descending = params.get("desc") == "1"
        page = _number(params.get("page"), "page")
        exact = _exact(store, search)
        if exact is not None:
            items, total = [exact], 1
        else:
            if search:
                filters = replace(filters, party=search)
            found = service.relationships(
                filters,
                sort=sort,
                descending=descending,
                limit=PAGE_SIZE,
                offset=(page - 1) * PAGE_SIZE,
            )
            items, total = found.items, found.total
        until = datetime.now(UTC).replace(microsecond=0)
        since = until - timedelta(days=AT_RISK_DAYS)
        return _render(
            request,
            "index.html",
            session=session,
            key=key,
            params=params,
            query=lambda **changes: _listing_query(params, **changes),
            search=search,
            items=items,
            total=total,
            page=page,
            pages=max(1, -(-total // PAGE_SIZE)),
            sort=sort.value,
            descending=descending,
            choices={
                "phase": list(Phase),
                "stage": list(Stage),
                "connection": list(Connection),
                "fairness": list(FairnessStatus),
            },
            sort_keys=list(queries.SortKey),
            phases=service.stats(0)["distribution"]["phase"],
            at_risk=service.at_risk(since, until, AT_RISK_SHOWN),
            since=since,
            until=until,
            risk_days=AT_RISK_DAYS,
            notes=service.notes().lines(),
        )

    return _page(request, store, draw)


def _exact(store: Shared, search: str) -> dict[str, Any] | None:
    """The relationship whose id is `search`, if there is one."""
    if not search:
        return None
    try:
        return store.service.standing(search)
    except NotFound:
        return None


def _number(value: str | None, name: str) -> int:
    if not value:
        return 1
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise Invalid(f"{name}: {value[:40]!r} is not a page number (1 to {MAX_PAGE})")
    return int(value)


def _as_of(value: str | None) -> datetime | None:
    """A date from the picker: the end of that day, UTC (as `--as-of DT23:59:59Z`)."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise Invalid(f"as_of: {value!r} is not a date (YYYY-MM-DD)") from None
    return datetime.combine(day, time(23, 59, 59), UTC)


@router.get("/relationships/{relationship_id}")
def relationship(request: Request, store: Store, rel: RelId) -> Response:
    params = request.query_params

    def draw(session: Session, key: ApiKey) -> Response:
        as_of = _as_of(params.get("as_of"))
        shown = relationship_page(
            store.service,
            rel,
            auditor=key.role is Role.AUDITOR,
            as_of=as_of,
            policy=params.get("policy") or None,
            page=_number(params.get("page"), "page"),
        )
        kept = {"as_of": params.get("as_of", ""), "policy": params.get("policy", "")}
        return _render(
            request,
            "relationship.html",
            session=session,
            key=key,
            view=shown,
            standing=shown.figures.standing,
            query=lambda **changes: _listing_query(kept, **changes),
        )

    return _page(request, store, draw)
