"""Consecutive-failures circuit breaker with one half-open probe: the same states and transitions as
client/breaker.ts (closed -> open after N unavailable results; open -> half-open after half_open_after_ms, where
one probe goes through and every other call is refused at once; the probe's result closes or re-opens it)."""

from __future__ import annotations

import threading
import time
from typing import Callable

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half-open"

# Admission
REFUSED = 0
CALL = 1
PROBE = 2

# Call results
SUCCESS = 0
UNAVAILABLE = 1
#: Any other error (WRONGTYPE, a non-idempotent call of unknown outcome): leaves the count while closed; as a
#: probe's result it shows Redis answering and closes the breaker.
NEUTRAL = 2


class CircuitBreaker:
    def __init__(
        self,
        threshold: int,
        half_open_after_ms: float,
        on_state_change: Callable[[str], None] = lambda s: None,
        now: Callable[[], float] = time.monotonic,
    ):
        self.threshold = threshold
        self.half_open_after_ms = half_open_after_ms
        self._on_state_change = on_state_change
        self._now = now
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        return self._state

    @property
    def probe_due(self) -> bool:
        return self._state == OPEN and (self._now() - self._opened_at) * 1000 >= self.half_open_after_ms

    def admit(self) -> int:
        """Whether a call may go through now; an admitted call must report back with record()."""
        changed = None
        with self._lock:
            if self._state == CLOSED:
                return CALL
            if self.probe_due:
                changed = self._set(HALF_OPEN)
                admission = PROBE
            else:
                admission = REFUSED
        if changed:
            self._on_state_change(changed)
        return admission

    def record(self, admission: int, result: int) -> None:
        changed = None
        with self._lock:
            if admission == PROBE:
                if self._state == HALF_OPEN:
                    changed = self._open() if result == UNAVAILABLE else self._close()
            elif admission == CALL and self._state == CLOSED:
                # A call admitted while closed that finishes after the breaker opened changes nothing.
                if result == SUCCESS:
                    self._failures = 0
                elif result == UNAVAILABLE:
                    self._failures += 1
                    if self._failures >= self.threshold:
                        changed = self._open()
        if changed:
            self._on_state_change(changed)

    def _open(self) -> "str | None":
        self._opened_at = self._now()
        return self._set(OPEN)

    def _close(self) -> "str | None":
        self._failures = 0
        return self._set(CLOSED)

    def _set(self, state: str) -> "str | None":
        if state == self._state:
            return None
        self._state = state
        return state
