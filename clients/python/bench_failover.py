#!/usr/bin/env python3
"""Failover benchmark on a loopback cluster: redis-py 4.3.4 with Sentinel.master_for() defaults beside redis_ha,
each running one writer of numbered `SET` + `WAIT 1 200` (a write counts as acknowledged when WAIT returned >= 1),
for a master crash (SIGKILL, kept down) and a hang (SIGSTOP for --hang-s seconds), measured as FACTS.md measured
ioredis: time from the fault to the first acknowledged write that the new master holds, and acknowledged writes
missing on the new master. Prints numbers; asserts nothing.

    /usr/bin/python3 clients/python/bench_failover.py [--hang-s 20]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from typing import Callable, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from redis.sentinel import Sentinel  # noqa: E402

from redis_ha import SentinelClient  # noqa: E402
from tests.cluster import LoopbackCluster, wait_for  # noqa: E402
from tests.servers import client_options  # noqa: E402


def plain_writer(c: LoopbackCluster) -> Callable[[int], None]:
    # Defaults everywhere, as a team would start: no socket timeout, no retries.
    sentinel = Sentinel(c.sentinels, sentinel_kwargs={"password": c.sentinel_password}, password=c.password)
    master = sentinel.master_for("mymaster")

    def write(i: int) -> None:
        _, acked = master.pipeline(transaction=False).set(f"w:{i}", i).wait(1, 200).execute()
        if acked < 1:
            raise RuntimeError("not acknowledged")

    return write


def ha_writer(c: LoopbackCluster) -> Callable[[int], None]:
    client = SentinelClient(client_options(c))

    def write(i: int) -> None:
        client.durable_write(lambda p: p.set(f"w:{i}", i), replicas=1, timeout_ms=200, idempotent=True)

    return write


def run(kind: str, fault: str, hang_s: float) -> Tuple[float, int, int]:
    c = LoopbackCluster()
    try:
        write = plain_writer(c) if kind == "redis-py defaults" else ha_writer(c)
        acks: List[Tuple[int, float]] = []
        stop = threading.Event()

        def loop() -> None:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    write(i)
                    acks.append((i, time.monotonic()))
                except Exception:  # noqa: BLE001
                    time.sleep(0.005)

        t = threading.Thread(target=loop, daemon=True)
        t.start()
        wait_for("writes", lambda: len(acks) > 100, 10)
        old = c.nodes[0]
        fault_at = time.monotonic()
        if fault == "crash":
            c.kill(old)
        else:
            c.pause(old)
        wait_for("a new master", lambda: c.master_by_sentinels() not in (None, old), 30, 0.05)
        if fault == "hang":
            time.sleep(max(0.0, fault_at + hang_s - time.monotonic()))
            c.resume(old)
        time.sleep(12 if fault == "hang" else 3)  # past Sentinel's conversion of the old master (~10 s)
        stop.set()
        t.join(timeout=60)
        new = c.master_by_sentinels()
        assert new is not None
        r = c.node(new)
        held = set()
        for k in range(0, len(acks), 1000):
            chunk = acks[k : k + 1000]
            for (i, _), v in zip(chunk, r.mget([f"w:{i}" for i, _ in chunk])):
                if v == str(i):
                    held.add(i)
        first = next((at for i, at in acks if at > fault_at and i in held), float("nan"))
        lost = sum(1 for i, _ in acks if i not in held)
        return first - fault_at, len(acks), lost
    finally:
        c.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hang-s", type=float, default=20.0)
    a = ap.parse_args()
    print(f"loopback cluster: down-after 2000 ms; hang = SIGSTOP for {a.hang_s:g} s")
    print(f"{'scenario':8} {'client':20} {'fault -> first ack on new master':>34} {'acked':>7} {'lost':>6}")
    for fault in ("crash", "hang"):
        for kind in ("redis-py defaults", "redis_ha"):
            resumed, acked, lost = run(kind, fault, a.hang_s)
            print(f"{fault:8} {kind:20} {resumed * 1000:31.0f} ms {acked:7d} {lost:6d}", flush=True)


if __name__ == "__main__":
    main()
