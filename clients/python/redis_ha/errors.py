"""Named errors of the client: the same classes, labels and rules as the TypeScript client (client/errors.ts).

Every error says what is known about whether the call changed data on the server (``outcome``):

- ``"not-executed"``: Redis refused the command before running it (READONLY, LOADING, ...) or the client
  never wrote it to a socket. Safe to send again, even for INCR.
- ``"unknown"``: the command was written but no reply came back (timeout, connection lost). It may have run.
  Only calls declared idempotent are sent again.
- ``"failed"``: Redis ran the command and answered with an error (WRONGTYPE, syntax, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

#: What the package exports from here (redis_ha/__init__.py re-exports exactly these).
__all__ = [
    "AuthenticationError", "CircuitOpenError", "ClientClosedError", "DeadlineExceededError", "InvalidOptionsError",
    "NotConnectedError", "OptionProblem", "OutcomeUnknownError", "PartiallyAppliedError", "RedisClientError",
    "WriteNotAcknowledgedError",
]

NOT_EXECUTED = "not-executed"
UNKNOWN = "unknown"
FAILED = "failed"


class RedisClientError(Exception):
    """Base class of every error this package raises.

    ``error_class`` is a short stable label (the ``class`` label of ``errors_total``); ``unavailable`` says the
    error means Redis is unreachable (it feeds the breaker and the stale fallback).
    """

    error_class = "other"
    outcome = UNKNOWN
    unavailable = False

    def __init__(self, message: str, cause: Optional[BaseException] = None):
        super().__init__(message)
        self.__cause__ = cause

    @property
    def cause(self) -> Optional[BaseException]:
        return self.__cause__


class DeadlineExceededError(RedisClientError):
    """The call's deadline passed. With outcome ``unknown`` the command was sent and may have been applied; it
    is not sent again by this client. Change the deadline with ``deadline_ms`` (per call) or
    ``timeouts.deadline_ms``."""

    error_class = "deadline"
    unavailable = True

    def __init__(self, deadline_ms: float, outcome: str, cause: Optional[BaseException] = None):
        self.deadline_ms = deadline_ms
        self.outcome = outcome
        if outcome == UNKNOWN:
            msg = (
                f"Redis call exceeded its {deadline_ms:g} ms deadline; outcome unknown: the command was sent and may "
                f'or may not have been applied. It will not be replayed. Raise "deadline_ms" if failovers take longer here.'
            )
        else:
            msg = (
                f"Redis call exceeded its {deadline_ms:g} ms deadline before any command was sent (no ready master "
                f'connection); nothing was applied. Raise "deadline_ms" if failovers take longer here.'
            )
        super().__init__(msg, cause)


class CircuitOpenError(RedisClientError):
    """The breaker is open, or half-open with its one probe out: refused without contacting Redis."""

    error_class = "circuit_open"
    outcome = NOT_EXECUTED
    unavailable = True

    def __init__(self) -> None:
        super().__init__(
            "Redis circuit breaker is open: recent calls found Redis unreachable, so this call was refused without "
            'being sent. A probe call is let through after "breaker.half_open_after_ms".'
        )


_UNKNOWN_REASONS = ("connection-lost", "failover-started", "replicas-unverified")


class WriteNotAcknowledgedError(RedisClientError):
    """A durable write ran on the master but its replication was not confirmed.

    ``reason``: ``timeout`` (too few replicas by the deadline) / ``wait-error`` (WAIT refused): applied, outcome
    ``failed``; ``connection-lost`` / ``failover-started`` / ``replicas-unverified``: outcome ``unknown``, the write
    may be lost; retried only for idempotent durable writes.
    """

    error_class = "not_acknowledged"

    def __init__(self, required: int, acknowledged: int, reason: str, cause: Optional[BaseException] = None):
        self.required = required
        self.acknowledged = acknowledged
        self.reason = reason
        unknown = reason in _UNKNOWN_REASONS
        self.outcome = UNKNOWN if unknown else FAILED
        self.unavailable = unknown
        if reason == "connection-lost":
            head = f"Durable write: the master connection was lost or replaced before {required} replica(s) acknowledged it; "
        elif reason == "failover-started":
            head = (
                "Durable write: Sentinel started a failover before the acknowledgement arrived, and the acknowledging "
                "replica may not be the one promoted; "
            )
        elif reason == "replicas-unverified":
            head = (
                f"Durable write: {acknowledged} replica(s) acknowledged it, but a replica of this master left or stopped "
                f"acknowledging ({cause if cause is not None else 'unknown'}): a failover may be under way and the new "
                "master may lack the write; "
            )
        else:
            head = ""
        if unknown:
            msg = head + "outcome unknown, the write may be lost. It was not replayed."
        else:
            msg = (
                f"Durable write reached {acknowledged} of {required} required replica(s)"
                + (" before the deadline" if reason == "timeout" else " (WAIT failed)")
                + "; it is applied on the master but may be lost if the master fails now."
            )
        super().__init__(msg, cause)


class NotConnectedError(RedisClientError):
    """No ready master connection; the command was never sent."""

    error_class = "not_connected"
    outcome = NOT_EXECUTED
    unavailable = True

    def __init__(self, role: str = "master", cause: Optional[BaseException] = None, detail: str = ""):
        super().__init__(f"No ready Redis {role} connection{': ' + detail if detail else ''}; the command was not sent.", cause)


class AuthenticationError(RedisClientError):
    """Redis or the Sentinels refused the credentials: a configuration error, not an outage. Not retried, not
    counted by the breaker."""

    error_class = "auth"
    outcome = NOT_EXECUTED
    unavailable = False

    def __init__(self, server: str, cause: Optional[BaseException] = None):
        self.server = server
        reply = str(cause) if cause is not None else "refused"
        if server == "redis":
            msg = (
                f"Redis refused the client's credentials ({reply}); nothing was sent. "
                'Check "redis.username"/"redis.password" (redisPassword in the connection document).'
            )
        else:
            msg = (
                f"The Sentinels refused the client's credentials ({reply}); nothing was sent. "
                'Check "sentinel.username"/"sentinel.password" (sentinelPassword in the connection document).'
            )
        super().__init__(msg, cause)


class ClientClosedError(RedisClientError):
    """The application closed this client; nothing was sent."""

    error_class = "closed"
    outcome = NOT_EXECUTED
    unavailable = False

    def __init__(self) -> None:
        super().__init__("The Redis client was closed (client.close()); nothing was sent.")


class OutcomeUnknownError(RedisClientError):
    """The connection failed while a non-idempotent command was in flight; it may or may not have been applied,
    and it was not sent again. Pass ``idempotent=True`` for commands safe to repeat, or read back."""

    outcome = UNKNOWN
    unavailable = False

    def __init__(self, error_class: str, cause: Optional[BaseException] = None):
        self.error_class = error_class
        super().__init__(
            f"Redis connection failed while the command was in flight ({error_class}); outcome unknown: it may or may "
            "not have been applied. It was not retried because the call is not idempotent (pass idempotent=True if "
            "repeating it is safe).",
            cause,
        )


class PartiallyAppliedError(RedisClientError):
    """A durable write's pipeline was partly applied: some commands ran, others were refused. Not retried."""

    error_class = "partially_applied"
    outcome = FAILED
    unavailable = False

    def __init__(self, applied: int, commands: int, cause: Optional[BaseException] = None):
        self.applied = applied
        self.commands = commands
        super().__init__(
            f"Durable write partly applied: {applied} of {commands} command(s) ran on the master and the others were "
            f"refused ({cause if cause is not None else 'refused'}); not retried, replication not confirmed. "
            "Use transaction=True to apply all or none.",
            cause,
        )


@dataclass(frozen=True)
class OptionProblem:
    """One problem in the client options: the dotted option path and what is wrong, with the way out."""

    path: str
    reason: str


class InvalidOptionsError(ValueError):
    """Every problem in the client options (or the connection document), reported at once."""

    def __init__(self, problems: Sequence[OptionProblem]):
        self.problems = list(problems)
        n = len(self.problems)
        super().__init__(
            f"Invalid Redis client options ({n} problem{'' if n == 1 else 's'}):\n"
            + "\n".join(f"  - {p.path}: {p.reason}" for p in self.problems)
        )
