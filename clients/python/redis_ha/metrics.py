"""Prometheus metrics on the application's registry (client/metrics.ts names, prefix ``redis_client_``):

- ``<prefix>commands_total{op,outcome}``: calls by kind (read, write, durable_write) and outcome (success, stale,
  error, rejected)
- ``<prefix>errors_total{class}``: errors returned to callers, by class; retried errors are in retries_total
- ``<prefix>retries_total{class}``: retries, by the class of the error that caused them
- ``<prefix>breaker_state``: 0 closed, 1 half-open, 2 open
- ``<prefix>failovers_total``: master switches seen (Sentinel +switch-master, or discovery of another master)
- ``<prefix>command_duration_seconds{op}``: call duration, retries included
- ``<prefix>connection_ready{role}``: 1 when the master connection is ready

Two clients on one registry share the metrics (a second registration would raise "Duplicated timeseries").
"""

from __future__ import annotations

from typing import Any, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

BREAKER_STATE_VALUE = {"closed": 0, "half-open": 1, "open": 2}

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def _existing(registry: CollectorRegistry, name: str) -> Any:
    # prometheus_client 0.16 keeps its name index private; this is the only lookup it offers.
    return getattr(registry, "_names_to_collectors", {}).get(name)


class ClientMetrics:
    def __init__(self, registry: CollectorRegistry, prefix: str = "redis_client_"):
        self.registry = registry

        def get(name: str, lookup: str, make: Callable[[], Any]) -> Any:
            return _existing(registry, prefix + lookup) or make()

        self.commands = get("commands", "commands_total", lambda: Counter(
            prefix + "commands", "Redis client calls by kind and final outcome (success, stale, error, rejected).",
            ["op", "outcome"], registry=registry))
        self.errors = get("errors", "errors_total", lambda: Counter(
            prefix + "errors", "Errors returned to callers by class (readonly, connection, timeout, deadline, circuit_open, ...).",
            ["class"], registry=registry))
        self.retries = get("retries", "retries_total", lambda: Counter(
            prefix + "retries", "Retries of Redis calls, by the class of the error that caused them.", ["class"], registry=registry))
        self.breaker = get("breaker_state", "breaker_state", lambda: Gauge(
            prefix + "breaker_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open.", registry=registry))
        self.failovers = get("failovers", "failovers_total", lambda: Counter(
            prefix + "failovers", "Master switches seen (Sentinel +switch-master, or discovery of a different master).", registry=registry))
        self.duration = get("command_duration_seconds", "command_duration_seconds", lambda: Histogram(
            prefix + "command_duration_seconds", "Duration of Redis client calls, retries and waiting for a master included.",
            ["op"], buckets=_BUCKETS, registry=registry))
        self.ready = get("connection_ready", "connection_ready", lambda: Gauge(
            prefix + "connection_ready", "1 when the client's connection of this role is ready for commands.", ["role"], registry=registry))
        self.breaker.set(0)

    def call(self, op: str, outcome: str, seconds: float) -> None:
        self.commands.labels(op=op, outcome=outcome).inc()
        self.duration.labels(op=op).observe(seconds)

    def error(self, cls: str) -> None:
        self.errors.labels(**{"class": cls}).inc()

    def retry(self, cls: str) -> None:
        self.retries.labels(**{"class": cls}).inc()

    def breaker_state(self, state: str) -> None:
        self.breaker.set(BREAKER_STATE_VALUE[state])

    def failover(self) -> None:
        self.failovers.inc()

    def connection_ready(self, role: str, ready: bool) -> None:
        self.ready.labels(role=role).set(1 if ready else 0)
