"""`relledger keys`: create, list and revoke the HTTP service's API keys.

The keys live in the store (see `service.keys`), so these commands work on the same
`--db` as the service and take effect on every replica at once. A new key is printed
once, as the last line of stdout, so a script can capture it
(`KEY=$(relledger keys create ...)`); everything meant for a person goes to stderr.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.text import Text

from relledger import render
from relledger.app import CsvFlag, HelpfulGroup, JsonFlag, app, output_choice, run
from service.keys import ApiKey, KeyRing, Role

keys_app = typer.Typer(
    cls=HelpfulGroup,
    help="Create, list and revoke the API keys of the HTTP service (relledger serve).",
    no_args_is_help=True,
)
PANEL_SERVICE = "Serve over HTTP"
app.add_typer(keys_app, name="keys", rich_help_panel=PANEL_SERVICE)

NameArgument = Annotated[str, typer.Argument(help="The key's name, as `keys list` shows it.")]


def _keyring(ctx: typer.Context) -> KeyRing:
    """The store's keys (their table is made by `relledger migrate`)."""
    return ctx.obj.service().keys  # type: ignore[no-any-return]


@keys_app.command("create")
def create_command(
    ctx: typer.Context,
    role: Annotated[
        Role,
        typer.Option(
            case_sensitive=False,
            help="producer: record interactions; reader: ask the read models; "
            "auditor: what a reader may, and audit (replay, verify).",
        ),
    ],
    name: Annotated[
        str,
        typer.Option(help="Who or what holds the key (unique; letters, digits, . _ @ -)."),
    ],
    json: JsonFlag = False,
) -> None:
    """Create a key and print it once, as the last line of stdout."""

    def make() -> tuple[str, ApiKey]:
        ring = _keyring(ctx)
        key = ring.create(role, name)
        made = ring.authenticate(key)
        assert made is not None
        return key, made

    key, made = run(make)
    if json:
        render.print_json({**made.view(), "key": key})
        return
    render.err.print(
        f"created {made.role.value} key {escape(repr(made.name))} (id {made.key_id}); "
        "store it now: it will not be shown again"
    )
    render.out.print(key, markup=False, highlight=False)


@keys_app.command("list")
def list_command(ctx: typer.Context, json: JsonFlag = False, csv: CsvFlag = False) -> None:
    """Every key, revoked ones included: name, role, key id and dates (never the key)."""
    output_choice(json, csv)
    keys = run(lambda: _keyring(ctx).list())
    if json:
        render.print_json([key.view() for key in keys])
        return
    if not keys:
        render.err.print("no API keys (relledger keys create --role reader --name NAME)")
        if render.out.is_terminal and not csv:
            return
    render.print_table(_keys_table(keys), as_csv=csv)


def _keys_table(keys: list[ApiKey]) -> render.Grid:
    grid = render.Grid(("name", "role", "key id", "created", "revoked"), title="API keys")
    for key in keys:
        revoked = Text("-") if key.revoked_at is None else Text(_when(key.revoked_at), style="red")
        grid.add_row(key.name, key.role.value, key.key_id, _when(key.created_at), revoked)
    return grid


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


@keys_app.command("revoke")
def revoke_command(ctx: typer.Context, name: NameArgument, json: JsonFlag = False) -> None:
    """Revoke a key: it stops working at once on every replica (again: no change)."""
    revoked = run(lambda: _keyring(ctx).revoke(name))
    assert revoked.revoked_at is not None
    if json:
        render.print_json(revoked.view())
        return
    render.out.print(
        f"key {escape(repr(revoked.name))} (id {revoked.key_id}) revoked at "
        f"{revoked.revoked_at.isoformat()}"
    )
