"""Error -> class, outcome, availability, and the retry decision. Pure; mirrors client/classify.ts.

redis-py 4.3.4 specifics (redis/connection.py ``BaseParser.EXCEPTION_CLASSES``, redis/exceptions.py):
mapped replies lose their code in the message (``ReadOnlyError("You can't write against a read only replica.")``),
``BusyLoadingError`` (LOADING) and ``AuthenticationError`` subclass ``ConnectionError``, so they are tested first;
MASTERDOWN, NOREPLICAS and WRONGPASS arrive as plain ``ResponseError`` with their code kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import exceptions as rx

from .errors import FAILED, NOT_EXECUTED, UNKNOWN, RedisClientError


@dataclass(frozen=True)
class Classification:
    error_class: str
    outcome: str
    unavailable: bool


def _c(error_class: str, outcome: str, unavailable: bool) -> Classification:
    return Classification(error_class, outcome, unavailable)


# Refused before execution, all transient during a failover (see client/classify.ts for each).
_REFUSED_PREFIXES = (
    ("READONLY", "readonly"),
    ("LOADING", "loading"),
    ("MASTERDOWN", "masterdown"),
    ("NOREPLICAS", "noreplicas"),
    ("TRYAGAIN", "tryagain"),
    ("CLUSTERDOWN", "tryagain"),
)
_AUTH_PREFIXES = ("NOAUTH", "WRONGPASS", "NOPERM")

#: Attribute set on a reply error when the attempt that got it sent EVAL/EVALSHA/FCALL: a script may have
#: written before it failed, so even a "refused" reply leaves the outcome unknown.
SCRIPT_MARK = "redis_ha_script"


def _refused_class(err: BaseException) -> "str | None":
    if isinstance(err, rx.ReadOnlyError):
        return "readonly"
    if isinstance(err, rx.BusyLoadingError):
        return "loading"
    msg = str(err)
    for prefix, cls in _REFUSED_PREFIXES:
        if msg.startswith(prefix):
            return cls
    # WAIT sent to a replica (the master was demoted under us): WAIT itself applies nothing.
    if "WAIT cannot be used with replica instances" in msg:
        return "readonly"
    return None


def classify_error(err: BaseException) -> Classification:
    """Sorts any error raised while talking to Redis into what the retry policy, the breaker and the metrics
    need. See tests/test_classify.py."""
    if isinstance(err, RedisClientError):
        return _c(err.error_class, err.outcome, err.unavailable)
    refused = _refused_class(err)
    if refused is not None and isinstance(err, (rx.ResponseError, rx.BusyLoadingError)):
        if getattr(err, SCRIPT_MARK, False):
            return _c(refused, UNKNOWN, True)
        return _c(refused, NOT_EXECUTED, True)
    if isinstance(err, (rx.AuthenticationError, rx.NoPermissionError, rx.AuthorizationError)):
        return _c("auth", FAILED, False)
    if isinstance(err, rx.ExecAbortError):
        # redis-py raises the first queue-time refusal instead when there was one (Pipeline._execute_transaction).
        return _c("command", NOT_EXECUTED, False)
    if isinstance(err, rx.ResponseError):
        msg = str(err)
        if any(msg.startswith(p) for p in _AUTH_PREFIXES):
            return _c("auth", FAILED, False)
        return _c("command", FAILED, False)
    if isinstance(err, (rx.TimeoutError, TimeoutError)):
        return _c("timeout", UNKNOWN, True)
    if isinstance(err, (rx.ConnectionError, ConnectionError, OSError)):
        # Connect-phase failures are wrapped in NotConnectedError before they get here; a raw connection error
        # means the socket failed with the command written or being written: it may have run.
        return _c("connection", UNKNOWN, True)
    return _c("other", UNKNOWN, False)


def is_retryable(cls: Classification, idempotent: bool) -> bool:
    """A call is sent again only if the error is transient and either nothing ran, or the call is idempotent."""
    if not cls.unavailable:
        return False
    if cls.error_class in ("circuit_open", "deadline"):
        return False
    if cls.outcome == NOT_EXECUTED:
        return True
    return cls.outcome == UNKNOWN and idempotent
