"""SentinelClient: the Python counterpart of client/client.ts, built on redis-py 4.3.4, tenacity and
prometheus_client. Thread-safe: calls may come from many threads; each call holds one connection while it runs."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar

import redis
from redis import exceptions as rx

from . import breaker as br
from .classify import SCRIPT_MARK, classify_error
from .connection import MasterPool, addr
from .durable_write import DEFAULT_WAIT_TIMEOUT_MS, DURABILITIES, DurableWriteResult, attempt as durable_attempt
from .errors import ClientClosedError
from .health import asgi_app, collect_health, health_response, wsgi_app
from .metrics import ClientMetrics
from .options import ClientOptions, StaleCacheOptions, resolve_options
from .policies import CallPolicies
from .replica_guard import ReplicaGuard, role_probe
from .stale_cache import ReadResult, StaleCache
from .state import CallState, Guard
from .watcher import FailoverWatcher

log = logging.getLogger("redis_ha")
T = TypeVar("T")

#: A replica whose acked offset has not moved for this long while the master's has counts as gone (ReplicaGuard).
REPLICA_STALL_MS = 2000

EVENTS = ("failover", "breaker_state_change", "retry", "stale_served", "connection_state_change")


class SentinelClient:
    """A Redis client for a Sentinel-managed master.

    >>> client = SentinelClient(options_from_file("lab.json", region="eu-central"))
    >>> client.durable_write(lambda p: p.set("order:1", "..."), replicas=1)      # DurableWriteResult
    >>> client.write(lambda r: r.incr("visits"))                                  # never re-sent if outcome unknown
    >>> client.run(lambda r: r.set("k", "v"), idempotent=True)                    # retried after timeouts too
    >>> client.read_through("k", lambda r: r.get("k"))                            # ReadResult(value, stale, age_ms)
    """

    def __init__(self, options: ClientOptions):
        self.options = opts = resolve_options(options)
        self._listeners: Dict[str, List[Callable[..., None]]] = {e: [] for e in EVENTS}
        self.metrics = ClientMetrics(opts.metrics.registry, opts.metrics.prefix) if opts.metrics else None
        self.last_failover: Optional[Dict[str, Any]] = None
        sc = opts.stale_cache
        self._cache = StaleCache(sc.max_entries, sc.ttl_ms) if isinstance(sc, StaleCacheOptions) else None
        self._closed = False
        self._probe_timer: Optional[threading.Timer] = None
        self._pool = MasterPool(opts, self._switched)
        self._policies = CallPolicies(
            opts.retry,
            opts.breaker,
            opts.timeouts.command_ms,
            sleep=self._pool.wait_change,
            on_retry=self._retried,
            on_breaker_state=self._breaker_changed,
        )
        self._guard = ReplicaGuard(role_probe(opts), REPLICA_STALL_MS, opts.timeouts.failover_fence_ms)
        self._watcher = FailoverWatcher(
            opts,
            on_try_failover=lambda m: self._pool.fence(m, opts.timeouts.failover_fence_ms),
            on_switch=lambda old, new: self._pool.switch(new, "sentinel"),
        )

    # -- events -------------------------------------------------------------------------------------------
    def on(self, event: str, fn: Callable[..., None]) -> None:
        """Subscribes ``fn`` to ``failover`` (dict from/to/source/at), ``breaker_state_change`` (state),
        ``retry`` (error_class, attempt, delay_ms, error), ``stale_served`` (key, age_ms, error_class)."""
        if event not in self._listeners:
            raise ValueError(f"unknown event {event!r}; events: {', '.join(EVENTS)}")
        self._listeners[event].append(fn)

    def _emit(self, event: str, *args: Any) -> None:
        for fn in list(self._listeners[event]):
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - a listener's bug must not break a call
                log.exception("redis_ha %s listener failed", event)

    def _switched(self, old: Optional[str], new: str, source: str) -> None:
        self.last_failover = {"from": old, "to": new, "source": source, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        if self.metrics:
            self.metrics.failover()
        self._emit("failover", dict(self.last_failover))

    def _retried(self, cls: str, attempt: int, delay_ms: float, err: BaseException) -> None:
        if cls == "noreplicas":
            # A master that keeps refusing writes may be one only a cut-off minority of Sentinels still names.
            self._pool.refused_write()
        if self.metrics:
            self.metrics.retry(cls)
        self._emit("retry", cls, attempt, delay_ms, err)

    def _breaker_changed(self, state: str) -> None:
        if self.metrics:
            self.metrics.breaker_state(state)
        if state == br.OPEN:
            self._schedule_probe()
        self._emit("breaker_state_change", state)

    def _schedule_probe(self) -> None:
        """While open, the client probes by itself after half_open_after_ms (a PING as the half-open probe), so
        health turns 200 again when Redis is back even without traffic."""
        if self._closed:
            return
        if self._probe_timer:
            self._probe_timer.cancel()

        def probe() -> None:
            if self._closed or not self._policies.breaker.probe_due:
                return
            try:
                self._execute(lambda r: r.ping(), True, None)
            except Exception:  # noqa: BLE001 - its result moves the breaker
                pass

        self._probe_timer = threading.Timer(self.options.breaker.half_open_after_ms / 1000, probe)
        self._probe_timer.daemon = True
        self._probe_timer.start()

    # -- state ---------------------------------------------------------------------------------------------
    @property
    def breaker_state(self) -> str:
        return self._policies.breaker.state

    @property
    def master_address(self) -> Optional[str]:
        return addr(self._pool.address)

    @property
    def connection_epoch(self) -> int:
        return self._pool.epoch

    # -- calls ---------------------------------------------------------------------------------------------
    def run(self, fn: Callable[[redis.Redis], T], idempotent: bool = False, deadline_ms: Optional[float] = None, kind: str = "write") -> T:
        """Runs ``fn(r)`` on the master under the deadline, breaker and retry policies. ``fn`` may run more than
        once (retries) and must send its commands through the ``redis.Redis`` it is given (one connection).
        ``idempotent``: whether sending it twice is harmless (decides retries after an unknown outcome)."""
        return self._observed(kind, lambda: self._execute(fn, idempotent, deadline_ms))

    def read(self, fn: Callable[[redis.Redis], T], deadline_ms: Optional[float] = None) -> T:
        """``run`` for reads: idempotent."""
        return self.run(fn, idempotent=True, deadline_ms=deadline_ms, kind="read")

    def write(self, fn: Callable[[redis.Redis], T], idempotent: bool = False, deadline_ms: Optional[float] = None) -> T:
        """``run`` for writes: not idempotent unless said so."""
        return self.run(fn, idempotent=idempotent, deadline_ms=deadline_ms, kind="write")

    def _execute(self, fn: Callable[[redis.Redis], T], idempotent: bool, deadline_ms: Optional[float]) -> T:
        if self._closed:
            raise ClientClosedError()

        def attempt(guard: Guard) -> T:
            conn = self._pool.acquire(guard)
            reusable = False
            conn.guard = guard
            try:
                value = fn(conn.client)
                reusable = True
                return value
            except rx.ResponseError as e:
                if guard.state.sent_script:
                    setattr(e, SCRIPT_MARK, True)
                if isinstance(e, rx.ReadOnlyError) or str(e).startswith("READONLY"):
                    # A demoted master: leave it, ask Sentinel on the next connection (ioredis reconnectOnError).
                    self._pool.suspect()
                else:
                    reusable = True
                raise
            except (rx.TimeoutError, TimeoutError):
                # Hung master: a SIGSTOPped master keeps its sockets open; drop them and ask Sentinel again.
                self._pool.suspect()
                raise
            finally:
                self._pool.release(conn, reusable)

        return self._policies.execute(attempt, idempotent, deadline_ms if deadline_ms is not None else self.options.timeouts.deadline_ms)

    def _observed(self, op: str, call: Callable[[], T]) -> T:
        started = time.monotonic()
        try:
            value = call()
        except Exception as e:
            if self.metrics:
                cls = classify_error(e)
                self.metrics.error(cls.error_class)
                self.metrics.call(op, "rejected" if cls.error_class == "circuit_open" else "error", time.monotonic() - started)
                if cls.error_class in ("not_connected", "deadline"):
                    self.metrics.connection_ready("master", False)
            raise
        if self.metrics:
            self.metrics.call(op, "success", time.monotonic() - started)
            self.metrics.connection_ready("master", True)
        return value

    def read_through(self, cache_key: str, fn: Callable[[redis.Redis], T], deadline_ms: Optional[float] = None) -> ReadResult:
        """A read that remembers its result under ``cache_key`` and, while Redis is unavailable (breaker not
        closed, deadline without a master, connection errors), returns the last value (not older than
        ``stale_cache.ttl_ms``) as ``ReadResult(value, stale=True, age_ms)``. Other errors, and unavailability
        with nothing cached, are raised."""
        started = time.monotonic()
        if self._cache is not None and self.breaker_state != br.CLOSED:
            cached = self._cache.get(cache_key)
            if cached is not None:
                if self._policies.breaker.probe_due:
                    # The due probe still goes out, in the background, and refreshes the cache when it succeeds.
                    def refresh() -> None:
                        try:
                            self._cache.set(cache_key, self._execute(fn, True, deadline_ms))  # type: ignore[union-attr]
                        except Exception:  # noqa: BLE001
                            pass

                    threading.Thread(target=refresh, daemon=True).start()
                return self._stale(cache_key, cached, "circuit_open", started)
        try:
            value = self._execute(fn, True, deadline_ms)
        except Exception as e:
            cls = classify_error(e)
            cached = self._cache.get(cache_key) if (self._cache is not None and cls.unavailable) else None
            if cached is not None:
                return self._stale(cache_key, cached, cls.error_class, started)
            if self.metrics:
                self.metrics.error(cls.error_class)
                self.metrics.call("read", "rejected" if cls.error_class == "circuit_open" else "error", time.monotonic() - started)
            raise
        if self._cache is not None:
            self._cache.set(cache_key, value)
        if self.metrics:
            self.metrics.call("read", "success", time.monotonic() - started)
        return ReadResult(value=value, stale=False)

    def _stale(self, key: str, cached: Tuple[Any, float], cls: str, started: float) -> ReadResult:
        value, age_ms = cached
        if self.metrics:
            self.metrics.call("read", "stale", time.monotonic() - started)
        self._emit("stale_served", key, age_ms, cls)
        return ReadResult(value=value, stale=True, age_ms=age_ms)

    def durable_write(
        self,
        build: Callable[[Any], Any],
        replicas: Optional[int] = None,
        timeout_ms: int = DEFAULT_WAIT_TIMEOUT_MS,
        idempotent: bool = False,
        deadline_ms: Optional[float] = None,
        transaction: bool = False,
        durability: str = "attached",
    ) -> DurableWriteResult:
        """A write that succeeds only once the replicas ``durability`` asks for confirmed it: by default
        (``"attached"``) every replica attached to the master and acknowledging, and at least ``replicas``
        (default ``durable_replicas``: the connection document's ``durability.replicas`` when it has one);
        ``"count"``: ``replicas`` replicas (plain WAIT n). ``build(p)`` queues the write on a pipeline; WAIT and
        ROLE are appended and all go out in one socket write on one connection.
        ``transaction=True`` wraps the commands in MULTI/EXEC (all or none). Raises WriteNotAcknowledgedError,
        PartiallyAppliedError, OutcomeUnknownError-like errors as documented in README.md."""
        if self._closed:
            raise ClientClosedError()
        n = self.options.durable_replicas if replicas is None else replicas
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"durable_write: replicas must be an integer >= 1, got {n!r}")
        if durability not in DURABILITIES:
            raise ValueError(f"durable_write: durability must be one of {', '.join(DURABILITIES)}, got {durability!r}")
        cmd_ms = self.options.timeouts.command_ms
        if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or not 1 <= timeout_ms < cmd_ms:
            raise ValueError(
                f"durable_write: timeout_ms must be an integer between 1 and timeouts.command_ms - 1 ({cmd_ms - 1}), got {timeout_ms!r}; "
                "WAIT blocks for up to timeout_ms and would otherwise be cut off as a command timeout"
            )
        deadline = deadline_ms if deadline_ms is not None else self.options.timeouts.deadline_ms
        return self._observed(
            "durable_write",
            lambda: self._policies.execute(
                lambda g: durable_attempt(self._pool, self._guard, build, n, durability, timeout_ms, transaction, g),
                idempotent,
                deadline,
            ),
        )

    # -- health --------------------------------------------------------------------------------------------
    def _probe_master(self) -> Tuple[Optional[str], Optional[float], Optional[str]]:
        guard_state = CallState()
        guard = Guard(time.monotonic() + self.options.timeouts.health_ms / 1000, guard_state, self.options.timeouts.health_ms)
        try:
            conn = self._pool.acquire(guard)
        except Exception as e:  # noqa: BLE001
            if self.metrics:
                self.metrics.connection_ready("master", False)
            return None, None, str(e)
        ok = False
        try:
            conn.guard = guard
            started = time.monotonic()
            conn.client.ping()
            ping_ms = round((time.monotonic() - started) * 1000, 2)
            role = conn.client.execute_command("ROLE")
            ok = True
            r0 = role[0].decode() if isinstance(role[0], bytes) else str(role[0])
            if self.metrics:
                self.metrics.connection_ready("master", r0 == "master")
            return r0, ping_ms, None
        except Exception as e:  # noqa: BLE001
            if self.metrics:
                self.metrics.connection_ready("master", False)
            return None, None, str(e)
        finally:
            self._pool.release(conn, ok)

    def health(self) -> Dict[str, Any]:
        """The health report (a JSON-ready dict, ``httpStatus`` 200 or 503)."""
        return collect_health(self)

    def health_response(self) -> Tuple[int, List[Tuple[str, str]], bytes]:
        """(status, headers, body) for any HTTP framework."""
        return health_response(self.health)

    def wsgi_health_app(self) -> Any:
        return wsgi_app(self.health)

    def asgi_health_app(self) -> Any:
        return asgi_app(self.health)

    def close(self) -> None:
        self._closed = True
        if self._probe_timer:
            self._probe_timer.cancel()
        self._watcher.close()
        self._pool.close()

    def __enter__(self) -> "SentinelClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
