"""redis_ha: a Redis + Sentinel client for Python with the guarantees of the kit's TypeScript client (client/):
Sentinel discovery (own region first), retries only of what provably did not run, durable writes (write + WAIT +
ROLE on one connection, refused across a failover), a circuit breaker with half-open probing, stale reads,
health, Prometheus metrics and a per-call deadline. See README.md."""

from .breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from .classify import Classification, classify_error, is_retryable
from .client import SentinelClient
from .config import options_from_document, options_from_file
from .durable_write import DurableWriteResult
from .errors import *  # noqa: F403 (errors.__all__ names the error classes)
from .errors import __all__ as _ERRORS
from .metrics import ClientMetrics
from .options import (
    BreakerOptions,
    ClientOptions,
    MetricsOptions,
    RetryOptions,
    SentinelEndpoint,
    ServerAuth,
    StaleCacheOptions,
    Timeouts,
)
from .stale_cache import ReadResult, StaleCache

__all__ = [
    *_ERRORS, "BreakerOptions", "CLOSED", "CircuitBreaker", "Classification", "ClientMetrics", "ClientOptions",
    "DurableWriteResult", "HALF_OPEN", "MetricsOptions", "OPEN", "ReadResult", "RetryOptions", "SentinelClient",
    "SentinelEndpoint", "ServerAuth", "StaleCache", "StaleCacheOptions", "Timeouts", "classify_error", "is_retryable",
    "options_from_document", "options_from_file",
]
