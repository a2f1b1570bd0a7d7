"""All Redis nodes down and back, against real processes: breaker closed -> open -> half-open probe -> closed
(the client probes by itself), read_through serving the last value marked stale, the health handler's 200/503,
and the metrics on the application's registry."""

from __future__ import annotations

import asyncio
import json
import time
import unittest
from typing import Any, Dict, List

from prometheus_client import CollectorRegistry

from redis_ha import (
    BreakerOptions,
    CircuitOpenError,
    DeadlineExceededError,
    MetricsOptions,
    NotConnectedError,
    SentinelClient,
    Timeouts,
)

from .cluster import LoopbackCluster, wait_for
from .servers import client_options, require_servers


def wsgi_call(app: Any) -> "tuple[int, Dict[str, Any]]":
    got: List[str] = []
    body = b"".join(app({"REQUEST_METHOD": "GET", "PATH_INFO": "/health"}, lambda status, headers: got.append(status)))
    return int(got[0].split()[0]), json.loads(body)


def asgi_call(app: Any) -> "tuple[int, Dict[str, Any]]":
    sent: List[Dict[str, Any]] = []

    async def receive() -> Dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(m: Dict[str, Any]) -> None:
        sent.append(m)

    asyncio.run(app({"type": "http", "method": "GET", "path": "/health"}, receive, send))
    return sent[0]["status"], json.loads(sent[1]["body"])


class OutageTest(unittest.TestCase):
    def setUp(self) -> None:
        require_servers(self)
        # A long down-after: Sentinel starts no failover while every node is down for a few seconds.
        self.cluster = LoopbackCluster(down_after_ms=30_000)
        self.addCleanup(self.cluster.close)

    def sample(self, name: str, labels: Dict[str, str] = {}) -> float:  # noqa: B006
        v = self.registry.get_sample_value(name, labels)
        return 0.0 if v is None else v

    def test_all_nodes_down_and_back(self) -> None:
        c = self.cluster
        self.registry = CollectorRegistry()
        client = SentinelClient(
            client_options(
                c,
                timeouts=Timeouts(command_ms=300, connect_ms=200, sentinel_command_ms=200, deadline_ms=400, health_ms=300),
                breaker=BreakerOptions(consecutive_failures=3, half_open_after_ms=700),
                metrics=MetricsOptions(registry=self.registry),
            )
        )
        self.addCleanup(client.close)
        states: List[str] = []
        client.on("breaker_state_change", states.append)

        client.write(lambda r: r.set("greeting", "hello"))
        fresh = client.read_through("greeting", lambda r: r.get("greeting"))
        self.assertEqual((fresh.value, fresh.stale), (b"hello", False))
        self.assertEqual(wsgi_call(client.wsgi_health_app())[0], 200)
        status, body = asgi_call(client.asgi_health_app())
        self.assertEqual((status, body["status"], body["master"]["role"]), (200, "ok", "master"))
        self.assertEqual(body["sentinels"]["reachable"], 3)

        for n in c.nodes:
            c.kill(n)
        t0 = time.monotonic()
        # Unavailable: every call fails with "nothing ran" or at its deadline, until the breaker opens.
        failures = 0
        while client.breaker_state == "closed":
            with self.assertRaises((NotConnectedError, DeadlineExceededError)):
                client.read(lambda r: r.get("greeting"))
            failures += 1
            self.assertLessEqual(failures, 3)
        opened_after = time.monotonic() - t0
        self.assertEqual(client.breaker_state, "open")
        with self.assertRaises(CircuitOpenError):
            client.write(lambda r: r.set("x", 1))
        stale = client.read_through("greeting", lambda r: r.get("greeting"))
        self.assertEqual((stale.value, stale.stale), (b"hello", True))
        self.assertGreater(stale.age_ms, 0)
        with self.assertRaises(CircuitOpenError):
            client.read_through("never-cached", lambda r: r.get("never-cached"))
        status, body = wsgi_call(client.wsgi_health_app())
        self.assertEqual((status, body["status"], body["breaker"]), (503, "down", "open"))
        self.assertEqual(asgi_call(client.asgi_health_app())[0], 503)
        self.assertEqual(self.sample("redis_client_breaker_state"), 2)

        # The client's own probe finds Redis still down: open again (half-open in between).
        wait_for("a failed half-open probe", lambda: states.count("half-open") >= 1 and states[-1] == "open", 5, 0.02)

        for n in c.nodes:
            c.restart(n)
        back = time.monotonic()
        # Nobody calls: the client's own probe closes the breaker and health turns 200.
        wait_for("the breaker to close by itself", lambda: client.breaker_state == "closed", 10, 0.02)
        closed_after = time.monotonic() - back
        self.assertEqual(wsgi_call(client.wsgi_health_app())[0], 200)
        self.assertEqual(client.read_through("greeting", lambda r: r.get("greeting")).stale, False)
        self.assertEqual(states[:3], ["open", "half-open", "open"])
        self.assertEqual(states[-2:], ["half-open", "closed"])
        print(
            f"\n  [redis_ha] all nodes down: breaker open after {1000 * opened_after:.0f} ms ({failures} failed calls); "
            f"closed {1000 * closed_after:.0f} ms after the nodes were back; states {states}",
        )

        self.assertEqual(self.sample("redis_client_breaker_state"), 0)
        self.assertGreaterEqual(self.sample("redis_client_commands_total", {"op": "read", "outcome": "stale"}), 1)
        self.assertGreaterEqual(self.sample("redis_client_commands_total", {"op": "write", "outcome": "rejected"}), 1)
        self.assertGreaterEqual(self.sample("redis_client_commands_total", {"op": "read", "outcome": "success"}), 2)
        self.assertGreaterEqual(self.sample("redis_client_errors_total", {"class": "circuit_open"}), 2)
        self.assertGreaterEqual(self.sample("redis_client_command_duration_seconds_count", {"op": "read"}), 3)
        self.assertEqual(self.sample("redis_client_connection_ready", {"role": "master"}), 1)

    def test_two_clients_share_one_registry_and_failovers_are_counted(self) -> None:
        registry = CollectorRegistry()
        a = SentinelClient(client_options(self.cluster, metrics=MetricsOptions(registry=registry)))
        b = SentinelClient(client_options(self.cluster, metrics=MetricsOptions(registry=registry)))
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        a.write(lambda r: r.set("k", 1))
        b.write(lambda r: r.set("k", 2))
        self.assertEqual(registry.get_sample_value("redis_client_commands_total", {"op": "write", "outcome": "success"}), 2)
        self.assertEqual(registry.get_sample_value("redis_client_failovers_total"), 0)
        a._pool.switch(("127.0.0.1", 1), "test")
        self.assertEqual(registry.get_sample_value("redis_client_failovers_total"), 1)


if __name__ == "__main__":
    unittest.main()
