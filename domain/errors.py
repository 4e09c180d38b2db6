"""The ways an interaction can be refused, each naming the field a producer must fix."""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error relledger raises on purpose."""


class InteractionRejected(LedgerError):
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


class InteractionConflict(InteractionRejected):
    """The idempotency key `(source, event_id)` was already recorded with other content.

    Not a duplicate: a redelivery is byte-identical in its canonical form, while this
    is a producer reusing an id for something else (or changing history). Recording
    it would lose one of the two; dropping it silently would hide the change.
    """

    code = "conflict"


class PolicyError(LedgerError):
    """A scoring policy file that cannot be used."""
