"""The `relledger` commands that prove the history intact: verify, and the signed
checkpoints and proofs an auditor keeps outside the store (signing-key new,
checkpoint, checkpoints, prove, verify-proof).

A thin face: what is checked, and every JSON shape, come from `service.checkpoints`
and `service.audit_files` (and `projections.audit` for the chains); here are only
options, files named on the command line, and lines for a person. Documents (a
checkpoint, a proof) go to `--out` or stdout; what is meant for a person goes to stderr
when stdout carries a document.
They register on the one Typer `app` (see `relledger.app`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from relledger import render
from relledger.app import (
    EXIT_REJECTED,
    PANEL_AUDIT,
    CsvFlag,
    HelpfulGroup,
    JsonFlag,
    RelId,
    app,
    output_choice,
    run,
)
from service.audit_files import (
    Checkpoint,
    read_checkpoint,
    refuse_existing,
    signed_checkpoint,
    verify_proof,
    write_document,
)
from service.checkpoints import Checkpoints, LedgerCheck
from service.ledger_service import LedgerService
from service.signing_keys import create_key_pair, load_signing_key

signing_key_app = typer.Typer(
    cls=HelpfulGroup,
    help="The Ed25519 key that signs checkpoints (keep it away from the store).",
    no_args_is_help=True,
)
app.add_typer(signing_key_app, name="signing-key", rich_help_panel=PANEL_AUDIT)

CheckpointFile = Annotated[
    Path, typer.Option("--checkpoint", help="A checkpoint file (from relledger checkpoint).")
]
PublicKeyFile = Annotated[
    Path,
    typer.Option("--public-key", help="The signer's public key (PATH.pub of signing-key new)."),
]
OutFile = Annotated[
    Path | None, typer.Option("--out", help="Write the document to this file (default: stdout).")
]
ForceFlag = Annotated[bool, typer.Option("--force", help="Replace the --out file if it exists.")]
DocumentJsonFlag = Annotated[
    bool, typer.Option("--json", help="Print the document on stdout, even with --out.")
]


def _checkpoints(ctx: typer.Context) -> Checkpoints:
    """The checkpoints kept in the store (their table is made by `relledger migrate`)."""
    service: LedgerService = ctx.obj.service()
    return service.checkpoints


@signing_key_app.command("new")
def new_signing_key(
    path: Annotated[
        Path, typer.Argument(help="The private key's file; the public key goes to PATH.pub.")
    ],
    json: JsonFlag = False,
) -> None:
    """Create an Ed25519 key pair (PATH readable by you only, PATH.pub); print its key id.

    Existing files are never overwritten."""
    made = run(lambda: create_key_pair(path))
    if json:
        render.print_json(made.view())
        return
    render.err.print(
        f"wrote the private key {escape(str(made.private_key))} (mode 0600: keep it away "
        f"from the store) and the public key {escape(str(made.public_key))} (hand it to "
        "auditors); key id:"
    )
    render.out.print(made.key_id, markup=False)


@app.command(rich_help_panel=PANEL_AUDIT)
def checkpoint(
    ctx: typer.Context,
    signing_key: Annotated[
        Path, typer.Option("--signing-key", help="The private key file (signing-key new).")
    ],
    out: OutFile = None,
    force: ForceFlag = False,
    json: DocumentJsonFlag = False,
) -> None:
    """Verify every hash chain, then sign the ledger's size and Merkle root: a checkpoint.

    The checkpoint is kept in the store and written out for an auditor. Exit 1 if the
    chains are broken or the ledger no longer extends the latest checkpoint kept."""
    _check_out(out, force)
    key = run(lambda: load_signing_key(signing_key))
    taken: Checkpoint = run(lambda: _checkpoints(ctx).take(key))
    _emit(taken.view(), out, json, force)
    render.err.print(f"took {escape(str(taken))} (root {taken.root.hex()}){_written(out)}")


@app.command(rich_help_panel=PANEL_AUDIT)
def checkpoints(ctx: typer.Context, json: JsonFlag = False, csv: CsvFlag = False) -> None:
    """The checkpoints kept in the store, oldest first."""
    output_choice(json, csv)
    kept = run(lambda: _checkpoints(ctx).list())
    if json:
        render.print_json([one.view() for one in kept])
        return
    if not kept:
        render.err.print("no checkpoints kept in this store (relledger checkpoint takes one)")
        if render.out.is_terminal and not csv:
            return
    grid = render.Grid(
        ("time (UTC)", "records", "root", "key id"),
        title="checkpoints",
        numeric=frozenset({"records"}),
    )
    for one in kept:
        grid.add_row(
            one.time.removesuffix("+00:00").replace("T", " "),
            str(one.size),
            one.root.hex(),
            one.key_id,
        )
    render.print_table(grid, as_csv=csv)


@app.command(rich_help_panel=PANEL_AUDIT)
def verify(
    ctx: typer.Context,
    relationship_id: Annotated[
        str | None, typer.Argument(help="Check one relationship (default: all).")
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            help="Also check that the ledger extends this signed checkpoint (needs --public-key).",
        ),
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option("--public-key", help="The public key that signed --checkpoint."),
    ] = None,
    json: JsonFlag = False,
) -> None:
    """Recompute every hash chain from the stored records; exit 1 if anything was tampered with.

    The whole ledger is also compared with the latest checkpoint kept in the store (by
    root). With --checkpoint and --public-key: the checkpoint's signature is checked,
    then that the ledger extends it, and one line says what broke if it does not."""
    if (checkpoint is None) != (public_key is None):
        raise typer.BadParameter("--checkpoint and --public-key go together")
    if checkpoint is not None and public_key is not None:
        if relationship_id is not None:
            raise typer.BadParameter("a checkpoint covers the whole ledger: leave out REL_ID")
        _verify_extension(ctx, checkpoint, public_key, json=json)
        return
    service: LedgerService = run(ctx.obj.service)
    if relationship_id is None:
        check = run(service.verify_ledger)
    else:  # one relationship's chain: no checkpoint covers it alone
        check = LedgerCheck(run(lambda: service.verify(relationship_id)), None)
    if json:
        render.print_json(check.view())
    else:
        _print_verify(check)
    if not check.intact:
        raise typer.Exit(EXIT_REJECTED)


def _print_verify(check: LedgerCheck) -> None:
    for found in check.chains.breaks:
        render.err.print(f"[red]BROKEN[/] {escape(str(found))}")
    render.out.print(check.chains.summary(), markup=False)
    kept = check.kept
    if kept is not None and kept.extends:
        render.out.print(
            f"{escape(str(kept))}: its signature is not checked without "
            "--checkpoint FILE --public-key PATH.pub"
        )
    elif kept is not None:
        render.err.print(f"[red]BROKEN[/] {escape(str(kept))}")


def _verify_extension(
    ctx: typer.Context, checkpoint: Path, public_key: Path, *, json: bool
) -> None:
    """The signature first (no store is opened for a checkpoint it refuses), then the ledger."""
    signed = run(lambda: signed_checkpoint(checkpoint, public_key))
    extension = run(lambda: _checkpoints(ctx).extends(signed))
    if json:
        render.print_json(extension.view())
    else:
        render.out.print(str(extension), markup=False)


@app.command(rich_help_panel=PANEL_AUDIT)
def prove(
    ctx: typer.Context,
    relationship_id: RelId,
    version: Annotated[int, typer.Argument(min=1, help="The record's version (1: its first).")],
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            help="Prove against this checkpoint file (default: the latest kept in the store).",
        ),
    ] = None,
    out: OutFile = None,
    force: ForceFlag = False,
    json: DocumentJsonFlag = False,
) -> None:
    """An inclusion proof that one stored event is in a signed checkpoint.

    The proof holds the event's entry and audit path, for relledger verify-proof to check
    offline."""
    _check_out(out, force)
    against = None if checkpoint is None else run(lambda: read_checkpoint(checkpoint))
    proof = run(lambda: _checkpoints(ctx).prove(relationship_id, version, against))
    _emit(proof.view(), out, json, force)
    render.err.print(
        f"proof that {escape(proof.describe())} is record {proof.leaf_index + 1} of the "
        f"{proof.size} the checkpoint signed{_written(out)}"
    )


@app.command("verify-proof", rich_help_panel=PANEL_AUDIT)
def verify_proof_command(
    proof: Annotated[Path, typer.Argument(help="A proof file (from relledger prove).")],
    checkpoint: CheckpointFile,
    public_key: PublicKeyFile,
    json: JsonFlag = False,
) -> None:
    """Check an inclusion proof offline, against a signed checkpoint.

    No store is opened (--db is not needed). Exit 1 if the signature, the checkpoint or
    the proof fails."""
    proven = run(lambda: verify_proof(proof, checkpoint, public_key))
    if json:
        render.print_json(proven.view())
    else:
        render.out.print(str(proven), markup=False)


def _check_out(out: Path | None, force: bool) -> None:
    if out is not None:
        run(lambda: refuse_existing(out, replace=force))


def _emit(document: dict[str, Any], out: Path | None, json: bool, force: bool) -> None:
    """A document to its file, or to stdout (to both with --json)."""
    if out is not None:
        run(lambda: write_document(out, document, replace=force))
    if out is None or json:
        render.print_json(document)


def _written(out: Path | None) -> str:
    return "" if out is None else f"; written to {escape(str(out))}"
