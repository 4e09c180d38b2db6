"""What a test does when a server it needs is not there.

On a laptop without the server the test skips, naming the reason. In CI (CI=true)
the same absence is a failure: a backend that was never tested must not pass.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(reason: str, what: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI must test {what})")
    pytest.skip(reason)
