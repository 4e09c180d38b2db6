"""Where policy files come from: the shipped `v1`, or a file an auditor names."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

from domain.errors import PolicyError
from domain.policy import Policy

DEFAULT_POLICY = "v1"


@cache
def default_policy() -> Policy:
    text = files("domain").joinpath(f"policies/{DEFAULT_POLICY}.toml").read_text("utf-8")
    return Policy.from_toml(text, origin=f"policy {DEFAULT_POLICY}")


def load_policy(path: Path | None = None) -> Policy:
    if path is None:
        return default_policy()
    try:
        text = path.read_text("utf-8")
    except OSError as error:
        raise PolicyError(f"cannot read policy file {path}: {error.strerror}") from None
    return Policy.from_toml(text, origin=str(path))
