"""deadline -> circuit breaker -> retry (tenacity, decorrelated jitter) -> attempt; client/policies.ts in Python.

- The deadline bounds everything: waiting for a master, retries, backoff, every socket wait (each send and read
  lowers the socket timeout to what is left). Once it has passed nothing of the call is sent (state.Guard), so a
  call reported "not executed" at its deadline can never run later.
- The breaker sees one result per call, the one the caller gets, and counts only "Redis unavailable".
- Retries only where sending again is safe (classify.is_retryable): refused-before-execution always; unknown
  outcome (timeout, connection lost in flight) only for calls declared idempotent.
"""

from __future__ import annotations

import random
import time
from typing import Callable, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception

from . import breaker as br
from .classify import classify_error, is_retryable
from .errors import (
    UNKNOWN,
    CircuitOpenError,
    DeadlineExceededError,
    OutcomeUnknownError,
    RedisClientError,
    WriteNotAcknowledgedError,
)
from .options import BreakerOptions, RetryOptions
from .state import CallState, Guard

T = TypeVar("T")


def next_retry_delay(previous_ms: float, initial_ms: float, max_ms: float, rnd: Callable[[], float] = random.random) -> float:
    """Decorrelated jitter: random between the initial delay and three times the previous one, capped."""
    upper = max(initial_ms, previous_ms * 3)
    return min(max_ms, initial_ms + rnd() * (upper - initial_ms))


def attempt_failed(err: BaseException, idempotent: bool, state: CallState) -> BaseException:
    """Bookkeeping of a failed attempt; returns the error to raise in its place."""
    state.last_error = err
    cls = classify_error(err)
    if (state.in_flight or state.applied) and cls.outcome == UNKNOWN:
        state.saw_unknown = True
    state.in_flight = False
    state.sent_script = False
    if not idempotent and cls.outcome == UNKNOWN and cls.unavailable and not isinstance(err, RedisClientError):
        return OutcomeUnknownError(cls.error_class, err)
    return err


def deadline_error(deadline_ms: float, state: CallState) -> RedisClientError:
    """The error a call gets at its deadline."""
    if state.applied is not None and not state.in_flight:
        ack, req = state.applied
        return WriteNotAcknowledgedError(req, ack, "timeout", state.last_error)
    outcome = UNKNOWN if state.in_flight or state.saw_unknown else "not-executed"
    return DeadlineExceededError(deadline_ms, outcome, state.last_error)


def breaker_result(err: BaseException) -> int:
    cls = classify_error(err)
    return br.UNAVAILABLE if cls.unavailable and cls.error_class != "not_acknowledged" else br.NEUTRAL


class CallPolicies:
    def __init__(
        self,
        retry: RetryOptions,
        breaker: BreakerOptions,
        command_ms: int,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[str, int, float, BaseException], None] = lambda c, a, d, e: None,
        on_breaker_state: Callable[[str], None] = lambda s: None,
    ):
        self._retry = retry
        self._command_ms = command_ms
        self._sleep = sleep
        self._on_retry = on_retry
        self.breaker = br.CircuitBreaker(breaker.consecutive_failures, breaker.half_open_after_ms, on_breaker_state)

    def execute(self, attempt: Callable[[Guard], T], idempotent: bool, deadline_ms: float) -> T:
        """Runs ``attempt(guard)`` under the stack. The attempt must send only through connections that check
        ``guard`` (connection.HAConnection does)."""
        admission = self.breaker.admit()
        if admission == br.REFUSED:
            raise CircuitOpenError()
        state = CallState()
        guard = Guard(time.monotonic() + deadline_ms / 1000, state, self._command_ms)
        try:
            value = self._retrying(attempt, guard, idempotent)
        except BaseException as err:  # noqa: BLE001 - every error is classified, reported to the breaker, re-raised
            final = err
            if guard.remaining() <= 0 and classify_error(err).unavailable and not (
                isinstance(err, WriteNotAcknowledgedError) and err.reason != "timeout"
            ):
                final = deadline_error(deadline_ms, state)
            self.breaker.record(admission, br.UNAVAILABLE if isinstance(final, DeadlineExceededError) else breaker_result(final))
            if final is err:
                raise
            raise final from err
        state.in_flight = False
        self.breaker.record(admission, br.SUCCESS)
        return value

    def _retrying(self, attempt: Callable[[Guard], T], guard: Guard, idempotent: bool) -> T:
        delay = {"ms": 0.0}
        max_attempts = self._retry.max_attempts

        def one() -> T:
            try:
                return attempt(guard)
            except BaseException as e:  # noqa: BLE001
                replaced = attempt_failed(e, idempotent, guard.state)
                if replaced is e:
                    raise
                raise replaced from e

        def wait(rs: RetryCallState) -> float:
            delay["ms"] = next_retry_delay(delay["ms"], self._retry.initial_delay_ms, self._retry.max_delay_ms)
            return max(0.0, min(delay["ms"] / 1000, guard.remaining()))

        def stop(rs: RetryCallState) -> bool:
            return rs.attempt_number > max_attempts or guard.remaining() <= 0

        def before_sleep(rs: RetryCallState) -> None:
            err = rs.outcome.exception() if rs.outcome else None
            if err is not None:
                self._on_retry(classify_error(err).error_class, rs.attempt_number, delay["ms"], err)

        retrying = Retrying(
            stop=stop,
            wait=wait,
            retry=retry_if_exception(lambda e: is_retryable(classify_error(e), idempotent)),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(one)
