"""Helpers of the real-server tests: the skip/fail rule, client options for a loopback cluster, the durable-write
load and its read-back."""

from __future__ import annotations

import os
import threading
import time
import unittest
from typing import Any, Dict, List, Optional

from redis_ha import ClientOptions, RetryOptions, SentinelClient, SentinelEndpoint, ServerAuth, Timeouts

from .cluster import LoopbackCluster, missing_servers

_MISSING = missing_servers()


def require_servers(case: Any) -> None:
    """Skips without redis-server/redis-sentinel, except under CI=true, where that is a failure."""
    if _MISSING is None:
        return
    if os.environ.get("CI") == "true":
        raise AssertionError(f"cannot run real-server tests: {_MISSING}; under CI=true they may not skip (./run.sh setup installs them)")
    raise unittest.SkipTest(_MISSING)


def client_options(c: LoopbackCluster, **kw: Any) -> ClientOptions:
    base: Dict[str, Any] = dict(
        sentinels=[SentinelEndpoint(h, p) for h, p in c.sentinels],
        master_name="mymaster",
        redis=ServerAuth(password=c.password),
        sentinel=ServerAuth(password=c.sentinel_password),
        # Loopback: a command answers in well under a millisecond, so 1 s is plenty and keeps hang detection short.
        timeouts=Timeouts(command_ms=1000, connect_ms=500, sentinel_command_ms=300, deadline_ms=10_000, health_ms=300),
        retry=RetryOptions(initial_delay_ms=5, max_delay_ms=100, max_attempts=1000),
        connection_name="redis-ha-py-test",
    )
    base.update(kw)
    return ClientOptions(**base)


class DurableLoad:
    """Numbered durable writes (SET w:<i> <i>, WAIT 1) one after another in a thread; remembers which ones were
    acknowledged, when, and the errors."""

    def __init__(self, client: SentinelClient, idempotent: bool = True, durability: str = "attached"):
        self.client = client
        self.durability = durability
        self.idempotent = idempotent
        self.acked: List[int] = []
        self.ack_times: List[float] = []
        self.errors: Dict[str, int] = {}
        self.attempted = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            self.attempted = i
            try:
                self.client.durable_write(lambda p, i=i: p.set(f"w:{i}", i), replicas=1, timeout_ms=200, idempotent=self.idempotent, deadline_ms=8000, durability=self.durability)
                self.acked.append(i)
                self.ack_times.append(time.monotonic())
            except Exception as e:  # noqa: BLE001
                name = type(e).__name__ + (f"({e.reason})" if hasattr(e, "reason") else "")
                self.errors[name] = self.errors.get(name, 0) + 1
                time.sleep(0.005)

    def first_ack_after(self, t: float) -> Optional[float]:
        return next((x for x in self.ack_times if x > t), None)

    def stop(self) -> None:
        self._stop.set()
        self._t.join(timeout=15)

    def lost(self, c: LoopbackCluster) -> List[int]:
        """Acknowledged writes missing on the master the Sentinels name now."""
        master = c.master_by_sentinels()
        assert master is not None
        r = c.node(master)
        try:
            keys = [f"w:{i}" for i in self.acked]
            values = []
            for k in range(0, len(keys), 1000):
                values += r.mget(keys[k : k + 1000])
            return [i for i, v in zip(self.acked, values) if v != str(i)]
        finally:
            r.connection_pool.disconnect()
