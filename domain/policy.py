"""The scoring policy as versioned data.

Every number the folds use lives here, so an auditor can replay the same events
under another policy file and see what it would have said. Parsing is pure: the
caller reads the file (domain/ does no I/O).
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from domain.errors import PolicyError
from domain.kinds import EVIDENCE_KEYS


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BreachRule(_Section):
    factor: float = Field(ge=0, le=1)
    credibility_cap: float = Field(ge=0, le=100)


class DormancyRule(_Section):
    after_days: float = Field(ge=0)
    half_life_days: float = Field(gt=0)
    target: float = Field(ge=0, le=100)


class TrustRules(_Section):
    initial: float = Field(ge=0, le=100)
    gain_rate: float = Field(ge=0)
    loss_rate: float = Field(ge=0)
    strengths: dict[str, float]
    severities: dict[str, float]
    breach: BreachRule
    dormancy: DormancyRule

    @model_validator(mode="after")
    def _evidence_known(self) -> TrustRules:
        """A misspelled key would score nothing, silently: refuse it at load."""
        for section in ("strengths", "severities"):
            for key in getattr(self, section):
                if key not in EVIDENCE_KEYS:
                    known = ", ".join(sorted(EVIDENCE_KEYS))
                    raise ValueError(
                        f"{section}.{key}: not an outcome or a kind that is evidence "
                        f"(one of {known})"
                    )
        both = sorted(set(self.strengths) & set(self.severities))
        if both:
            raise ValueError(f"{both[0]}: both a strength and a severity; keep one")
        return self


class PhaseRules(_Section):
    expansion_min_successes: int = Field(ge=0)
    expansion_min_trust: float
    exploration_failure_below: float
    commitment_min_trust: float
    commitment_min_age_days: float = Field(ge=0)
    commitment_min_successes: int = Field(ge=0)
    commitment_exit_below: float
    expansion_exit_below: float
    breach_dissolution_below: float

    @model_validator(mode="after")
    def _thresholds_apart(self) -> PhaseRules:
        """Entry and exit thresholds must be apart, or phase rules could flip forever."""
        if self.commitment_exit_below >= self.commitment_min_trust:
            raise ValueError("commitment_exit_below must be below commitment_min_trust")
        if self.expansion_exit_below >= self.expansion_min_trust:
            raise ValueError("expansion_exit_below must be below expansion_min_trust")
        return self


class StageRules(_Section):
    window_days: float = Field(gt=0)
    min_transactions: int = Field(ge=0)
    growth_above: Decimal
    decline_below: Decimal


class FairnessRules(_Section):
    balanced_within: Decimal = Field(ge=0)
    exceeded_perceived_factor: Decimal = Field(ge=0)


class Policy(_Section):
    version: str = Field(min_length=1, max_length=50)
    trust: TrustRules
    phase: PhaseRules
    stage: StageRules
    fairness: FairnessRules

    @classmethod
    def from_toml(cls, text: str, *, origin: str = "policy") -> Policy:
        """Parse a policy file's text; errors name the offending key."""
        try:
            data: dict[str, Any] = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise PolicyError(f"{origin}: not valid TOML ({error})") from None
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            message = first["msg"].removeprefix("Value error, ")
            raise PolicyError(f"{origin}: {where}: {message}") from None
