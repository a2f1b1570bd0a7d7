"""Calls against a healthy loopback cluster: durable-write results and shortfalls, refusals ridden by retries,
command errors not retried, refused credentials, the per-call deadline."""

from __future__ import annotations

import threading
import time
import unittest
from typing import List

from redis import exceptions as rx

from redis_ha import (
    AuthenticationError,
    ClientClosedError,
    DeadlineExceededError,
    SentinelClient,
    ServerAuth,
    WriteNotAcknowledgedError,
)

from .cluster import LoopbackCluster
from .servers import client_options, require_servers


class CallsTest(unittest.TestCase):
    cluster: LoopbackCluster
    client: SentinelClient

    @classmethod
    def setUpClass(cls) -> None:
        require_servers(cls)
        cls.cluster = LoopbackCluster()
        cls.client = SentinelClient(client_options(cls.cluster))

    @classmethod
    def tearDownClass(cls) -> None:
        cls.client.close()
        cls.cluster.close()

    def master(self):  # type: ignore[no-untyped-def]
        r = self.cluster.node(self.cluster.nodes[0])
        self.addCleanup(r.connection_pool.disconnect)
        return r

    def test_durable_write_results_and_transaction(self) -> None:
        res = self.client.durable_write(lambda p: (p.set("d:1", "x"), p.incr("d:n"), p.get("d:1")), replicas=2)
        self.assertEqual((res.acknowledged, res.results), (2, [True, 1, b"x"]))
        res = self.client.durable_write(lambda p: (p.incr("d:n"), p.incr("d:n")), transaction=True)
        self.assertEqual(res.results, [2, 3])

    def test_attached_durability_waits_for_every_replica(self) -> None:
        c = SentinelClient(client_options(self.cluster))  # a fresh client: its guard has seen no replica yet
        self.addCleanup(c.close)
        acked = [c.durable_write(lambda p, i=i: p.set(f"d:a:{i}", i)).acknowledged for i in range(20)]
        self.assertEqual(set(acked), {2}, "every attached replica, from the first write on a new master")
        counted = [c.durable_write(lambda p: p.set("d:c", 1), durability="count").acknowledged for _ in range(5)]
        self.assertTrue(all(n >= 1 for n in counted))
        with self.assertRaises(ValueError):
            c.durable_write(lambda p: p.set("d:c", 1), durability="most")

    def test_too_few_replicas_is_not_acknowledged_at_the_deadline(self) -> None:
        started = time.monotonic()
        with self.assertRaises(WriteNotAcknowledgedError) as ctx:
            self.client.durable_write(lambda p: p.set("d:short", 1), replicas=3, timeout_ms=100, deadline_ms=600)
        took = time.monotonic() - started
        e = ctx.exception
        self.assertEqual((e.reason, e.outcome, e.required, e.acknowledged), ("timeout", "failed", 3, 2))
        self.assertLess(took, 1.0)
        self.assertEqual(self.master().get("d:short"), "1", "applied on the master, once")

    def test_command_error_is_not_retried(self) -> None:
        retries: List[str] = []
        self.client.on("retry", lambda cls, *a: retries.append(cls))
        self.client.write(lambda r: r.set("d:str", "x"))
        with self.assertRaises(rx.ResponseError):
            self.client.write(lambda r: r.lpush("d:str", 1))
        with self.assertRaises(rx.ResponseError):
            self.client.durable_write(lambda p: p.lpush("d:str", 1))
        self.assertEqual(retries, [])
        self.assertEqual(self.client.breaker_state, "closed")

    def test_refused_writes_are_retried_until_accepted(self) -> None:
        retries: List[str] = []
        self.client.on("retry", lambda cls, *a: retries.append(cls))
        m = self.master()
        m.config_set("min-replicas-to-write", 5)  # NOREPLICAS: refused before execution
        timer = threading.Timer(0.4, lambda: m.config_set("min-replicas-to-write", 0))
        timer.start()
        try:
            res = self.client.durable_write(lambda p: p.incr("d:refused"), deadline_ms=5000)
        finally:
            timer.join()
        self.assertEqual(res.results, [1], "INCR ran exactly once although it was sent many times")
        self.assertIn("noreplicas", retries)

        m.config_set("min-replicas-to-write", 5)
        try:
            with self.assertRaises(DeadlineExceededError) as ctx:
                self.client.write(lambda r: r.incr("d:refused"), deadline_ms=300)
        finally:
            m.config_set("min-replicas-to-write", 0)
        self.assertEqual(ctx.exception.outcome, "not-executed")
        self.assertEqual(m.get("d:refused"), "1")

    def test_refused_credentials(self) -> None:
        for kw, server in ((dict(redis=ServerAuth(password="wrong")), "redis"), (dict(sentinel=ServerAuth(password="wrong")), "sentinel")):
            with self.subTest(server=server):
                c = SentinelClient(client_options(self.cluster, **kw))
                self.addCleanup(c.close)
                started = time.monotonic()
                with self.assertRaises(AuthenticationError) as ctx:
                    c.write(lambda r: r.set("x", 1))
                self.assertEqual(ctx.exception.server, server)
                self.assertLess(time.monotonic() - started, 2.0, "fails at once, not at the deadline")
                self.assertEqual(c.breaker_state, "closed")

    def test_closed_client(self) -> None:
        c = SentinelClient(client_options(self.cluster))
        c.close()
        with self.assertRaises(ClientClosedError):
            c.read(lambda r: r.get("x"))


if __name__ == "__main__":
    unittest.main()
