"""Against real redis-server/redis-sentinel processes on 127.0.0.1: discovery, failovers ridden by durable writes
with no acknowledged write lost (SENTINEL FAILOVER, master killed, master hung), and no replay of a timed-out
write. Timings are printed, correctness is asserted."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import unittest

import redis
from redis_ha import DeadlineExceededError, OutcomeUnknownError, SentinelClient, SentinelEndpoint, Timeouts

from .cluster import LoopbackCluster, wait_for
from .servers import DurableLoad, client_options, require_servers


def report(msg: str) -> None:
    print(f"\n  [redis_ha] {msg}", file=sys.stderr)


def failover_taken(sentinel: redis.Redis) -> bool:
    """SENTINEL FAILOVER: True once taken, False while Sentinel has no replica it may promote (NOGOODSLAVE)."""
    try:
        sentinel.execute_command("SENTINEL FAILOVER", "mymaster")
    except redis.exceptions.ResponseError as e:
        if str(e).startswith("NOGOODSLAVE"):
            return False
        raise
    return True


class ClusterCase(unittest.TestCase):
    cluster: LoopbackCluster

    #: Start the test before both replicas are streaming (see test_sentinel_failover_right_after_a_full_sync).
    fresh = False

    def setUp(self) -> None:
        require_servers(self)
        self.cluster = LoopbackCluster(wait_streaming=not self.fresh)
        self.addCleanup(self.cluster.close)

    def client(self, **kw) -> SentinelClient:  # type: ignore[no-untyped-def]
        c = SentinelClient(client_options(self.cluster, **kw))
        self.addCleanup(c.close)
        return c

    def wait_switch(self, old) -> float:  # type: ignore[no-untyped-def]
        """Waits until the Sentinels name another master; returns when that was first seen."""
        wait_for("Sentinel to name a new master", lambda: self.cluster.master_by_sentinels() not in (None, old), 20, 0.02)
        return time.monotonic()


class DiscoveryTest(ClusterCase):
    def test_every_sentinel_is_asked_and_the_master_found_when_the_own_one_is_down(self) -> None:
        c = self.cluster
        own = c.sentinels[2]
        sentinels = [SentinelEndpoint(h, p, "us" if (h, p) != own else "eu") for h, p in c.sentinels]
        client = self.client(sentinels=sentinels, region="eu")

        def asked(s) -> int:  # type: ignore[no-untyped-def]
            """Clients of this Sentinel whose last command was the discovery query (Sentinel has no commandstats)."""
            r = c.sentinel(s)
            try:
                return sum(1 for x in r.client_list() if x.get("cmd") == "sentinel|get-master-addr-by-name")
            finally:
                r.connection_pool.disconnect()

        client.write(lambda r: r.set("k", "v"))
        self.assertEqual(client.master_address, f"{c.nodes[0][0]}:{c.nodes[0][1]}")
        # Every Sentinel is asked at once (a majority decides, so a cut-off own-region Sentinel cannot mislead).
        wait_for("every Sentinel asked", lambda: [asked(s) for s in c.sentinels] == [1, 1, 1], 5)

        c.kill_sentinel(own)
        client._pool.suspect()  # drop idle connections: the next call connects (and discovers) afresh
        self.assertEqual(client.read(lambda r: r.get("k")), b"v")


class Ride(ClusterCase):
    def ride(self, fault: str) -> None:
        c = self.cluster
        client = self.client()
        switches = []
        client.on("failover", lambda e: switches.append(time.monotonic()))
        old = c.nodes[0]
        load = DurableLoad(client, durability=os.environ.get("REDIS_HA_TEST_DURABILITY", "attached"))
        wait_for("acknowledged writes", lambda: len(load.acked) > 200, 10)
        fault_at = time.monotonic()
        if fault == "sentinel-failover":
            s = c.sentinel(c.sentinels[0])
            # Sentinel answers NOGOODSLAVE until it has read a replica it may promote, which on a loaded machine can
            # come a moment after the cluster starts: asked again until it takes the failover.
            wait_for("Sentinel to take SENTINEL FAILOVER", lambda: failover_taken(s), 10, 0.05)
            s.connection_pool.disconnect()
        elif fault == "kill":
            c.kill(old)
        elif fault == "hang":
            c.pause(old)
        self.wait_switch(old)
        wait_for("the client to see the switch", lambda: bool(switches), 5, 0.01)
        switch_at = switches[0]  # the earliest +switch-master from any Sentinel, as the client saw it
        wait_for("writes on the new master", lambda: load.first_ack_after(switch_at) is not None, 15, 0.01)
        resumed = load.first_ack_after(switch_at)
        if fault == "hang":
            c.resume(old)
        time.sleep(1.0)  # writes keep going after the switch, on the new master
        load.stop()
        lost = load.lost(c)
        report(
            f"{fault}: fault -> switch seen {1000 * (switch_at - fault_at):.0f} ms; switch -> first acknowledged write "
            f"{1000 * (resumed - switch_at):.0f} ms (target < 500); acknowledged {len(load.acked)}, lost {len(lost)}; "
            f"errors {load.errors}"
        )
        if lost:
            for n in c.nodes:
                try:
                    r = c.node(n)
                    report(f"  node {n}: role {r.execute_command('ROLE')[:2]} dbsize {r.dbsize()} has w:{lost[0]} {r.exists(f'w:{lost[0]}')} w:{lost[-1]} {r.exists(f'w:{lost[-1]}')} w:{load.acked[-1]} {r.exists(f'w:{load.acked[-1]}')}")
                except Exception as e:  # noqa: BLE001
                    report(f"  node {n}: {e}")
            keep = tempfile.mkdtemp(prefix="redis-ha-py-lost-")
            shutil.copytree(c.dir, keep, dirs_exist_ok=True)
            report(f"  Redis and Sentinel logs kept in {keep}")
            report(f"  lost {len(lost)}: {lost[:3]}..{lost[-3:]}; acked {load.acked[:3]}..{load.acked[-3:]}; master by Sentinels {c.master_by_sentinels()}; client {client.master_address}; failover {client.last_failover}")
        self.assertEqual(lost, [], "acknowledged durable writes lost")
        self.assertGreater(len(load.acked), 200)
        self.assertNotEqual(client.master_address, f"{old[0]}:{old[1]}")
        self.assertIsNotNone(client.last_failover)


class FailoverTest(Ride):
    def test_sentinel_failover(self) -> None:
        self.ride("sentinel-failover")

    def test_master_killed(self) -> None:
        self.ride("kill")

    def test_master_hung(self) -> None:
        self.ride("hang")


class NoReplayTest(ClusterCase):
    def test_timed_out_write_is_not_sent_again(self) -> None:
        c = self.cluster
        client = self.client(timeouts=Timeouts(command_ms=300, connect_ms=300, sentinel_command_ms=300, deadline_ms=3000, health_ms=300))
        client.write(lambda r: r.set("ctr", 0))
        c.pause(c.nodes[0])  # shorter than down-after: no failover, the master answers again later
        try:
            started = time.monotonic()
            with self.assertRaises((OutcomeUnknownError, DeadlineExceededError)) as ctx:
                client.write(lambda r: r.incr("ctr"))
            took = time.monotonic() - started
            self.assertEqual(ctx.exception.outcome, "unknown")
            time.sleep(1.0)
        finally:
            c.resume(c.nodes[0])
        # A replayed INCR would be waiting in a socket buffer of the resumed master and run now.
        time.sleep(0.5)
        r = c.node(c.nodes[0])
        value = int(r.get("ctr"))
        r.connection_pool.disconnect()
        report(f"timed-out INCR failed after {1000 * took:.0f} ms with {type(ctx.exception).__name__}; counter {value}")
        self.assertLessEqual(value, 1, "the timed-out INCR ran more than once: it was replayed")

        # The same call declared idempotent is retried (and succeeds once the master answers).
        self.assertEqual(client.run(lambda r: r.set("ctr2", 1), idempotent=True), True)


if __name__ == "__main__":
    unittest.main()


class FreshSyncFailoverTest(Ride):
    """The same, started while a replica that just finished its diskless full sync gets no stream yet (until its
    first REPLCONF ACK, up to 1 s). With "count" durability Sentinel promoted such a replica here and every write
    the other replica acknowledged was lost; "attached" (the default) waits for it too."""

    fresh = True

    def test_sentinel_failover_right_after_a_full_sync(self) -> None:
        self.ride("sentinel-failover")
