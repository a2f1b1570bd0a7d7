"""durable_write "attached" when a replica is forgotten while a write waits (tests/client/durableForgotten.test.ts in
Python), against real redis-server/redis-sentinel processes on 127.0.0.1.

A replica is cut off from the master (it replicates as its own ACL user; deleting that user on the master drops its
link and fails every reconnect) while it stays alive and reachable, so it still says "replica of this master". The
guard must not forget it before its grace (it is what a failover on the far side of a partition promotes); once it
forgets it, the write that waited through the grace must fail "replicas-unverified" instead of being acknowledged by
the other replica alone. Then the cut-off replica is promoted: no write acknowledged inside the grace may be lost;
the writes sent after the guard forgot it are the window clients/python/README.md states, and are printed."""

from __future__ import annotations

import sys
import time
from typing import Tuple

from redis_ha import Timeouts

from .cluster import MASTER_NAME, LoopbackCluster, wait_for
from .servers import DurableLoad
from .test_failover import ClusterCase

LINK_USER = "cutlink"
#: The guard's grace: timeouts.failover_fence_ms (default 5000).
GRACE_S = 5.0


def report(msg: str) -> None:
    print(f"\n  [redis_ha] {msg}", file=sys.stderr)


def _addr(a: Tuple[str, int]) -> str:
    return f"{a[0]}:{a[1]}"


def prepare_cut_off(c: LoopbackCluster) -> Tuple[Tuple[str, int], Tuple[str, int], Tuple[str, int]]:
    """The master, the replica to cut off (its own ACL user on the master) and the other one (replica-priority 0, so
    that SENTINEL FAILOVER can promote only the cut-off one); waits until the failing-over Sentinel would pick it."""
    master = c.master_by_sentinels()
    assert master is not None
    m = c.node(master)
    try:
        role = m.execute_command("ROLE")
        cut_off, other = [(r[0], int(r[1])) for r in role[2]][:2]
        m.execute_command("ACL", "SETUSER", LINK_USER, "on", f">{c.password}", "~*", "&*", "+@all")
    finally:
        m.connection_pool.disconnect()
    r = c.node(cut_off)
    try:
        r.execute_command("CONFIG", "SET", "masteruser", LINK_USER)
        r.execute_command("CLIENT", "KILL", "TYPE", "master")
    finally:
        r.connection_pool.disconnect()
    r = c.node(other)
    try:
        r.execute_command("CONFIG", "SET", "replica-priority", "0")
    finally:
        r.connection_pool.disconnect()

    def promotable() -> bool:
        s = c.sentinel(c.sentinels[-1])
        try:
            rows = s.execute_command("SENTINEL", "REPLICAS", MASTER_NAME)
        finally:
            s.connection_pool.disconnect()
        seen = {}
        for flat in rows:
            d = dict(zip(flat[::2], flat[1::2]))
            seen[f"{d['ip']}:{d['port']}"] = d
        t, o = seen.get(_addr(cut_off)), seen.get(_addr(other))
        return bool(
            t and o and t["flags"] == "slave" and t["master-link-status"] == "ok" and int(t["slave-priority"]) > 0
            and int(t["info-refresh"]) < 10_000 and o["slave-priority"] == "0"
        )

    wait_for("the Sentinel to see the cut-off replica as the only promotable one", promotable, 30, 0.2)
    return master, cut_off, other


class ForgottenReplicaTest(ClusterCase):
    def test_write_waiting_when_a_cut_off_replica_is_forgotten_is_not_acknowledged(self) -> None:
        c = self.cluster
        master, cut_off, _ = prepare_cut_off(c)
        # The deadline outlasts the grace, so that the write waits through it.
        client = self.client(timeouts=Timeouts(command_ms=1000, connect_ms=500, sentinel_command_ms=300, deadline_ms=10_000, health_ms=300))
        # Not idempotent: the caller sees the unknown outcome instead of a retry.
        load = DurableLoad(client, idempotent=False)
        try:
            wait_for("acknowledged writes", lambda: len(load.acked) > 100, 10)
            m = c.node(master)
            try:
                m.execute_command("ACL", "DELUSER", LINK_USER)
            finally:
                m.connection_pool.disconnect()
            cut_at = time.monotonic()
            wait_for("writes after the guard forgot the cut-off replica", lambda: load.first_ack_after(cut_at + GRACE_S) is not None, 20, 0.01)
            s = c.sentinel(c.sentinels[-1])
            try:
                s.execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
            finally:
                s.connection_pool.disconnect()
            wait_for("the client on the promoted replica", lambda: client.master_address == _addr(cut_off), 20, 0.02)
        finally:
            load.stop()
        lost = set(load.lost(c))
        acks = list(zip(load.acked, load.ack_times))
        waited = [i for i, t in acks if cut_at + 0.1 < t < cut_at + GRACE_S - 0.5]
        lost_inside = [i for i, t in acks if i in lost and t < cut_at + GRACE_S - 0.5]
        unverified = load.errors.get("WriteNotAcknowledgedError(replicas-unverified)", 0)
        report(
            f"cut-off replica forgotten after the grace, then promoted: {unverified} write(s) in flight failed "
            f"replicas-unverified; {len(waited)} acknowledged inside the grace; lost: {len(lost_inside)} acknowledged "
            f"inside the grace, {len(lost) - len(lost_inside)} after it (sent after the guard forgot the replica: the "
            f"stated window); errors {load.errors}"
        )
        # The one writer's write that waited through the grace failed; nothing was acknowledged inside it.
        self.assertEqual(unverified, 1)
        self.assertEqual(waited, [])
        self.assertEqual(lost_inside, [])
