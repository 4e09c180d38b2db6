"""Every error relledger raises on purpose, in a few families that its faces map once.

The families say what a caller can do about an error: fix the input (`Rejected`,
`Invalid`), look elsewhere (`NotFound`), reconcile with what is stored (`Conflict`),
wait or fix the infrastructure (`Unavailable`), investigate the store (`Damaged`),
distrust what it shows (`Unverified`), present another key (`Unauthenticated`,
`Forbidden`). The CLI maps each family to an exit code in one table
(`relledger/app.py`), the HTTP API to a status in one table; every concrete
error below (and elsewhere) belongs to exactly one family.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error relledger raises on purpose."""


class Rejected(LedgerError):
    """The input itself is refused; nothing was recorded because of it."""


class Invalid(LedgerError):
    """A request or argument that cannot be acted on (a bad policy file, a bad query)."""


class NotFound(LedgerError):
    """What was asked for does not exist in this store."""


class Conflict(LedgerError):
    """The request contradicts what is already stored (an id reused, a position taken)."""


class Unavailable(LedgerError):
    """The store (or a part of it) cannot be reached or is not ready; retrying later, or
    fixing the deployment, may help."""


class Damaged(LedgerError):
    """The store holds something it cannot read or fold: evidence to investigate."""


class Unverified(LedgerError):
    """The stored history fails verification: a broken hash chain, a ledger that does not
    extend a signed checkpoint, a proof or signature that does not check out."""


class Unauthenticated(LedgerError):
    """No credentials, or credentials nobody issued (or that were revoked)."""


class Forbidden(LedgerError):
    """Valid credentials whose role does not allow this."""


class InteractionRejected(Rejected):
    """An interaction that must not be recorded; `field` tells the producer what to fix.

    Rejections never change the ledger: the caller reports them and goes on
    with the rest of its batch. `code` says which family of refusal it is (`contract`,
    `contradiction`, `conflict`), for dead-letter headers, counters and HTTP answers.
    """

    code = "rejected"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class ContractViolation(InteractionRejected):
    """The message itself breaks `interaction/v1` (bad JSON, a missing or malformed field).

    A message can break several rules at once; `problems` lists every shape problem
    (or, once the shape is right, every kind rule broken) so a producer fixes them in
    one round trip. `field`/`reason` are the first.
    """

    code = "contract"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.problems: list[tuple[str, str]] = [(field, reason)]

    @classmethod
    def of(cls, problems: list[tuple[str, str]]) -> ContractViolation:
        error = cls(*problems[0])
        error.problems = list(problems)
        if len(problems) > 1:
            error.args = ("; ".join(f"{field}: {reason}" for field, reason in problems),)
        return error


class ContradictsRelationship(InteractionRejected):
    """A well-formed interaction that contradicts what the relationship already recorded
    (another currency, other parties)."""

    code = "contradiction"


class InteractionConflict(InteractionRejected, Conflict):
    """The idempotency key `(source, event_id)` was already recorded with other content.

    Not a duplicate: a redelivery is byte-identical in its canonical form, while this
    is a producer reusing an id for something else (or changing history). Recording
    it would lose one of the two; dropping it silently would hide the change.
    """

    code = "conflict"


class PolicyError(Invalid):
    """A scoring policy file that cannot be used."""
