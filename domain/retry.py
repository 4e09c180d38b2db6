"""The one retry policy: every loop that waits out a race or an outage goes through here.

A lost optimistic-concurrency race (two writers saving one relationship), a store
that is restarting, a dead-letter topic that is briefly unwritable: each is retried
with jittered exponential backoff (jitter, so that writers which collided do not
collide again in step), for at most `give_up_after` seconds, or until `stop` is set.
The backoff itself is `tenacity`'s; this module only fixes one policy for the whole
project and the one way of being told about each retry.

It lives in `domain/` because that is the one package every other layer may import;
it does no I/O, it only waits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_delay,
    stop_never,
    stop_when_event_set,
    wait_random_exponential,
)
from tenacity.stop import stop_base

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryNotice:
    """What a caller hears before each wait: which attempt failed, why, and for how long
    it now waits. `elapsed` counts from the first attempt."""

    what: str
    attempt: int
    error: BaseException
    wait_s: float
    elapsed_s: float


def retry_call(
    action: Callable[[], T],
    *,
    what: str,
    retry_on: tuple[type[BaseException], ...] | Callable[[BaseException], bool],
    give_up_after: float | None,
    initial_wait: float = 0.05,
    max_wait: float = 30.0,
    stop: threading.Event | None = None,
    on_retry: Callable[[RetryNotice], None] | None = None,
) -> T:
    """Call `action` until it returns; retry only `retry_on` errors.

    `retry_on` is a tuple of error types, or a predicate on the error. Gives up
    (re-raising the last error) once `give_up_after` seconds have passed since the
    first attempt (`None`: never), or as soon as `stop` is set; a wait is cut short
    by `stop`. Other errors propagate at once.
    """
    stops: stop_base = stop_never if give_up_after is None else stop_after_delay(give_up_after)
    sleep: Callable[[float], None] = _sleep
    if stop is not None:
        stops = stops | stop_when_event_set(stop)
        sleep = _interruptible(stop)

    def notify(state: RetryCallState) -> None:
        if on_retry is None or state.outcome is None or state.next_action is None:
            return
        error = state.outcome.exception()
        assert error is not None
        on_retry(
            RetryNotice(
                what=what,
                attempt=state.attempt_number,
                error=error,
                wait_s=state.next_action.sleep,
                elapsed_s=state.seconds_since_start or 0.0,
            )
        )

    retrying = Retrying(
        retry=(
            retry_if_exception_type(retry_on)
            if isinstance(retry_on, tuple)
            else retry_if_exception(retry_on)
        ),
        stop=stops,
        wait=wait_random_exponential(multiplier=initial_wait, max=max_wait),
        before_sleep=notify,
        sleep=sleep,
        reraise=True,
    )
    return retrying(action)


def _sleep(seconds: float) -> None:
    threading.Event().wait(seconds)


def _interruptible(stop: threading.Event) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        stop.wait(seconds)

    return sleep
