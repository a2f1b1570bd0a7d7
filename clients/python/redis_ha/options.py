"""Client options with their defaults (the same names and values as client/options.ts, in snake_case) and a
validation that reports every problem at once (InvalidOptionsError)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from typing import Any, List, Optional, Sequence, Union

from .errors import InvalidOptionsError, OptionProblem

DEFAULT_SENTINEL_PORT = 26379
DEFAULT_REDIS_PORT = 6379


@dataclass(frozen=True)
class SentinelEndpoint:
    host: str
    port: int = DEFAULT_SENTINEL_PORT
    #: Region the Sentinel runs in; Sentinels of the client's own ``region`` are asked first.
    region: Optional[str] = None


@dataclass(frozen=True)
class ServerAuth:
    username: Optional[str] = None
    password: Optional[str] = None
    #: redis-py SSL keyword arguments (``ssl_ca_certs``, ``ssl_certfile``...), or None for plain TCP.
    ssl: Optional[dict] = None


@dataclass(frozen=True)
class Timeouts:
    #: TCP connect timeout of Redis and Sentinel sockets (redis-py default: none, the OS's ~2 min). @default 2000
    connect_ms: int = 2000
    #: Per-command timeout (socket timeout while a reply is awaited; redis-py default none: a hung master holds a
    #: call forever). A command without reply by then fails "outcome unknown". Must exceed durable writes' WAIT
    #: timeout. @default 2000
    command_ms: int = 2000
    #: Timeout of each command sent to a Sentinel (discovery). @default 1000
    sentinel_command_ms: int = 1000
    #: TCP keep-alive idle time of every socket (redis-py default: keep-alive off). 0 = off. @default 5000
    keep_alive_ms: int = 5000
    #: Default deadline of a whole call, retries and waiting for a master included; must cover a failover
    #: (down-after + election) for calls to ride through one. Per call: ``deadline_ms``. @default 10000
    deadline_ms: int = 10000
    #: After +try-failover of the master this client is on, nothing is sent to it until the client is on the new
    #: master, or for at most this long (an aborted failover). @default 5000
    failover_fence_ms: int = 5000
    #: Timeout of each health probe (PING of the master and of every Sentinel). @default 500
    health_ms: int = 500


@dataclass(frozen=True)
class RetryOptions:
    #: First retry delay; later ones grow with decorrelated jitter. @default 20
    initial_delay_ms: int = 20
    #: @default 500
    max_delay_ms: int = 500
    #: Maximum retries of one call (the deadline usually ends it first). @default 50
    max_attempts: int = 50


@dataclass(frozen=True)
class BreakerOptions:
    #: Open after this many calls in a row failed because Redis was unavailable. @default 5
    consecutive_failures: int = 5
    #: Time the breaker stays open before one probe goes through (half-open). @default 5000
    half_open_after_ms: int = 5000


@dataclass(frozen=True)
class StaleCacheOptions:
    #: @default 1000
    max_entries: int = 1000
    #: Values older than this are never served. @default 300000 (5 minutes)
    ttl_ms: int = 300_000


@dataclass(frozen=True)
class MetricsOptions:
    #: prometheus_client CollectorRegistry of the application (required: nothing is registered globally).
    registry: Any = None
    #: Metric name prefix. @default "redis_client_"
    prefix: str = "redis_client_"


@dataclass(frozen=True)
class ClientOptions:
    #: Sentinels to ask for the master; own ``region`` first, order kept otherwise.
    sentinels: Sequence[SentinelEndpoint]
    #: Name in ``sentinel monitor <name> ...``.
    master_name: str
    #: Region this application runs in: orders ``sentinels`` and labels health output.
    region: Optional[str] = None
    redis: ServerAuth = field(default_factory=ServerAuth)
    sentinel: ServerAuth = field(default_factory=ServerAuth)
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryOptions = field(default_factory=RetryOptions)
    breaker: BreakerOptions = field(default_factory=BreakerOptions)
    #: Options of the stale cache behind read_through, or False to disable stale fallbacks.
    stale_cache: Union[StaleCacheOptions, bool] = field(default_factory=StaleCacheOptions)
    #: Metrics options, or None for no metrics.
    metrics: Optional[MetricsOptions] = None
    #: Name shown in CLIENT LIST (redis-py ``client_name``).
    connection_name: Optional[str] = None
    #: Decode replies to str (redis-py ``decode_responses``). @default False (bytes, as redis-py)
    decode_responses: bool = False
    #: Default replicas of durable_write (WAIT numreplicas); the connection document's region-safe level when
    #: it publishes one. @default 1
    durable_replicas: int = 1


def _int_problems(obj: Any, path: str, minimum: "dict[str, int]") -> List[OptionProblem]:
    out = []
    for f in fields(obj):
        v = getattr(obj, f.name)
        lo = minimum.get(f.name, 1)
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            out.append(OptionProblem(f"{path}.{f.name}", f"must be an integer >= {lo}, got {v!r}"))
    return out


def resolve_options(opts: ClientOptions) -> ClientOptions:
    """Validates ``opts`` (every problem at once) and returns them with the Sentinels sorted own region first."""
    problems: List[OptionProblem] = []
    if not opts.sentinels:
        problems.append(
            OptionProblem("sentinels", "must list at least one Sentinel (host, port), own region first (e.g. the connection document's \"sentinels\")")
        )
    for i, s in enumerate(opts.sentinels or []):
        if not isinstance(s, SentinelEndpoint):
            problems.append(OptionProblem(f"sentinels[{i}]", f"must be a SentinelEndpoint(host, port, region), got {s!r}"))
            continue
        if not isinstance(s.host, str) or not s.host.strip():
            problems.append(OptionProblem(f"sentinels[{i}].host", f"must be a non-empty host name or IP, got {s.host!r}"))
        if isinstance(s.port, bool) or not isinstance(s.port, int) or not 1 <= s.port <= 65535:
            problems.append(OptionProblem(f"sentinels[{i}].port", f"must be an integer port 1-65535, got {s.port!r}"))
    if not isinstance(opts.master_name, str) or not re.fullmatch(r"[A-Za-z0-9._-]+", opts.master_name):
        problems.append(
            OptionProblem("master_name", f'must be the name used in "sentinel monitor <name>" (letters, digits, . _ -), got {opts.master_name!r}')
        )
    problems += _int_problems(opts.timeouts, "timeouts", {"keep_alive_ms": 0})
    problems += _int_problems(opts.retry, "retry", {"max_attempts": 0})
    problems += _int_problems(opts.breaker, "breaker", {})
    if isinstance(opts.stale_cache, StaleCacheOptions):
        problems += _int_problems(opts.stale_cache, "stale_cache", {})
    elif opts.stale_cache is not False:
        problems.append(OptionProblem("stale_cache", f"must be StaleCacheOptions(...) or False, got {opts.stale_cache!r}"))
    if opts.metrics is not None:
        if opts.metrics.registry is None:
            problems.append(OptionProblem("metrics.registry", "must be the application's prometheus_client CollectorRegistry (or pass metrics=None)"))
        if not re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", opts.metrics.prefix or ""):
            problems.append(OptionProblem("metrics.prefix", f"must match [a-zA-Z_:][a-zA-Z0-9_:]* (Prometheus names), got {opts.metrics.prefix!r}"))
    if isinstance(opts.durable_replicas, bool) or not isinstance(opts.durable_replicas, int) or opts.durable_replicas < 1:
        problems.append(OptionProblem("durable_replicas", f"must be an integer >= 1, got {opts.durable_replicas!r}"))
    if problems:
        raise InvalidOptionsError(problems)
    ordered = sorted(opts.sentinels, key=lambda s: 0 if opts.region is not None and s.region == opts.region else 1)
    return replace(opts, sentinels=tuple(ordered))
