"""Per-call bookkeeping shared by the policies, the connection (which marks what was sent) and durable writes."""

from __future__ import annotations

import time
from typing import Any, Optional, Tuple

from .errors import NotConnectedError


class CallState:
    def __init__(self) -> None:
        #: An attempt has written (or is writing) commands and has not settled yet.
        self.in_flight = False
        #: An earlier attempt ended without knowing whether its commands ran.
        self.saw_unknown = False
        #: The current attempt sent EVAL/EVALSHA/FCALL (a refused reply then says nothing about earlier writes).
        self.sent_script = False
        self.last_error: Optional[BaseException] = None
        #: Set by durable writes once the master applied the write: (acknowledged, required).
        self.applied: Optional[Tuple[int, int]] = None


class DeadlinePassed(NotConnectedError):
    """Raised instead of sending once the call's deadline has passed: nothing of the call goes out after it."""

    def __init__(self) -> None:
        super().__init__(detail="the call's deadline passed before sending")


class Guard:
    """What a connection checks right before it writes a command of a call: the deadline has not passed and the
    connection is still the current one of its master. Then it marks the call in flight."""

    def __init__(self, deadline: float, state: CallState, command_ms: int):
        self.deadline = deadline
        self.state = state
        self.command_ms = command_ms

    def remaining(self) -> float:
        """Seconds left until the deadline (may be <= 0)."""
        return self.deadline - time.monotonic()

    def timeout(self) -> float:
        """Socket timeout for the next wait: the command timeout, cut at the deadline (never 0: that would make
        the socket non-blocking)."""
        return max(0.001, min(self.command_ms / 1000, self.remaining()))


def is_script(args: Tuple[Any, ...]) -> bool:
    if not args:
        return False
    name = args[0]
    if isinstance(name, bytes):
        name = name.decode(errors="replace")
    return isinstance(name, str) and name.split(" ")[0].upper() in ("EVAL", "EVALSHA", "FCALL")
