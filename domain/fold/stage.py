"""Development stage from transaction volume over two consecutive windows.

Only transactions that can still fall inside a window are kept: windows end at
the fold's clock or later, so anything older than two windows before the clock
never counts again. That keeps a long relationship's state small.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache

from domain.fold.facts import Fact
from domain.kinds import TRANSACTIONS
from domain.policy import StageRules

ZERO = Decimal(0)


class Stage(StrEnum):
    EMERGING = "emerging"
    GROWTH = "growth"
    MATURITY = "maturity"
    DECLINE = "decline"


@lru_cache(maxsize=8)
def _two_windows(window_days: float) -> timedelta:
    return 2 * timedelta(days=window_days)


class Volume:
    """Transaction count, the first transaction's time, and the recent amounts."""

    __slots__ = ("count", "first_at", "recent")

    def __init__(self) -> None:
        self.count = 0
        self.first_at: datetime | None = None
        self.recent: deque[tuple[datetime, Decimal]] = deque()

    def add(self, fact: Fact, clock: datetime, rules: StageRules) -> None:
        if fact.kind not in TRANSACTIONS or fact.amount is None:
            return
        at = fact.occurred_at
        self.count += 1
        if self.first_at is None or at < self.first_at:
            self.first_at = at
        horizon = clock - _two_windows(rules.window_days)
        while self.recent and self.recent[0][0] <= horizon:
            self.recent.popleft()
        if at > horizon:
            self.recent.append((at, fact.amount))

    def stage_at(self, end: datetime, rules: StageRules) -> Stage:
        window = timedelta(days=rules.window_days)
        if self.count < rules.min_transactions or self.first_at is None:
            return Stage.EMERGING
        if end - self.first_at < window:
            return Stage.EMERGING
        last = sum((a for at, a in self.recent if end - window < at <= end), ZERO)
        before = sum((a for at, a in self.recent if end - 2 * window < at <= end - window), ZERO)
        if before == ZERO:
            return Stage.GROWTH if last > ZERO else Stage.DECLINE
        change = (last - before) / before
        if change > rules.growth_above:
            return Stage.GROWTH
        if change < rules.decline_below:
            return Stage.DECLINE
        return Stage.MATURITY
