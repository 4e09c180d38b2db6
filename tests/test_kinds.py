"""The table of kinds (`domain.kinds`) is the one source of each kind's rules: the
contract enforces it, the policy's keys are checked against it, and the documentation
lists it as it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.contract import parse_interaction
from domain.errors import ContractViolation, PolicyError
from domain.kinds import EVIDENCE_KEYS, KINDS, Evidence, Kind, Need
from domain.policy import Policy

DOCS = Path(__file__).parent.parent / "docs"
POLICY = Path(__file__).parent.parent / "domain" / "policies" / "v1.toml"

_SAMPLE = {
    "amount": "12.50",
    "outcome": "met",
    "ref": "crm-1",
    "mode": "bilateral",
}


def kinds_table() -> str:
    """docs/contract.md's table of kinds, as the table in `domain.kinds` gives it."""
    lines = [
        "| kind | what it records | `amount` | `outcome` | `ref` | `mode` | trust reads |",
        "|---|---|---|---|---|---|---|",
    ]
    trust = {
        Evidence.OUTCOME: "its outcome",
        Evidence.KIND: "the kind",
        Evidence.BREACH: "the breach rule",
        Evidence.NONE: "nothing (see retractions)",
    }
    for rule in KINDS.values():
        needs = [rule.amount, rule.outcome, rule.ref, rule.mode]
        cells = ["" if need is Need.NOT_USED else need.value for need in needs]
        lines.append(
            f"| `{rule.kind}` | {rule.meaning} | {' | '.join(cells)} | {trust[rule.evidence]} |"
        )
    return "\n".join(lines) + "\n"


def test_the_contract_documents_every_kind_as_the_table_says() -> None:
    text = (DOCS / "contract.md").read_text()
    expected = kinds_table()
    assert expected in text, f"docs/contract.md should hold this table:\n{expected}"


def _message(kind: Kind, **fields: str) -> dict[str, object]:
    message: dict[str, object] = {
        "event_id": "e-1",
        "source": "crm",
        "relationship_id": "acme/bistro",
        "occurred_at": "2026-03-01T10:00:00Z",
        "kind": kind.value,
        "actor": "customer",
        **fields,
    }
    if "amount" in fields:
        message["currency"] = "EUR"
    return message


@pytest.mark.parametrize("kind", list(Kind))
def test_the_contract_requires_and_refuses_each_field_as_the_table_says(kind: Kind) -> None:
    rule = KINDS[kind]
    needs = {"amount": rule.amount, "outcome": rule.outcome, "ref": rule.ref, "mode": rule.mode}
    required = {name: _SAMPLE[name] for name, need in needs.items() if need is Need.REQUIRED}
    parse_interaction(_message(kind, **required))  # what it requires is enough
    for name, need in needs.items():
        if need is Need.REQUIRED:
            without = {k: v for k, v in required.items() if k != name}
            with pytest.raises(ContractViolation) as missing:
                parse_interaction(_message(kind, **without))
            assert (name, f"required for kind '{kind}'") in missing.value.problems
        elif need is Need.NOT_USED:
            with pytest.raises(ContractViolation) as extra:
                parse_interaction(_message(kind, **required, **{name: _SAMPLE[name]}))
            assert (name, f"not used by kind '{kind}'") in extra.value.problems
        else:
            parse_interaction(_message(kind, **required, **{name: _SAMPLE[name]}))


def test_the_live_policy_weighs_only_what_the_table_calls_evidence() -> None:
    policy = Policy.from_toml(POLICY.read_text())
    weighed = set(policy.trust.strengths) | set(policy.trust.severities)
    assert weighed <= EVIDENCE_KEYS
    assert "retraction" not in EVIDENCE_KEYS and "breach" not in EVIDENCE_KEYS


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (
            ("referral = 3.0", "refferal = 3.0"),
            "trust: strengths.refferal: not an outcome or a kind that is evidence",
        ),
        (
            ("disagreement = 1.0", "disagreement = 1.0\nretraction = 1.0"),
            "trust: severities.retraction: not an outcome or a kind that is evidence",
        ),
        (
            ("disagreement = 1.0", "disagreement = 1.0\nreferral = 1.0"),
            "trust: referral: both a strength and a severity; keep one",
        ),
    ],
)
def test_a_misspelled_or_contradictory_policy_key_fails_at_load(
    edit: tuple[str, str], reason: str
) -> None:
    text = POLICY.read_text()
    assert edit[0] in text
    with pytest.raises(PolicyError) as refused:
        Policy.from_toml(text.replace(edit[0], edit[1], 1), origin="mine.toml")
    assert str(refused.value).startswith(f"mine.toml: {reason}")
