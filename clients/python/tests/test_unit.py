"""Pure parts: error classification, retry rule, breaker transitions, stale cache, options, the connection
document, Sentinel message parsing, the replica guard. No servers."""

from __future__ import annotations

import json
import unittest

from redis import exceptions as rx

from redis_ha import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    CircuitBreaker,
    CircuitOpenError,
    ClientOptions,
    DeadlineExceededError,
    InvalidOptionsError,
    NotConnectedError,
    OutcomeUnknownError,
    SentinelEndpoint,
    StaleCache,
    Timeouts,
    WriteNotAcknowledgedError,
    classify_error,
    is_retryable,
    options_from_document,
)
from redis_ha import breaker as br
from redis_ha.classify import SCRIPT_MARK
from redis_ha.options import resolve_options
from redis_ha.policies import CallPolicies, deadline_error
from redis_ha.replica_guard import MasterRole, ReplicaGuard, cannot_lack_writes, parse_master_role
from redis_ha.state import CallState
from redis_ha.watcher import parse_switch_master, parse_try_failover
from redis_ha.connection import MasterPool, judge_answers


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def scripted(err: Exception) -> Exception:
    setattr(err, SCRIPT_MARK, True)
    return err


class ClassifyTest(unittest.TestCase):
    # (error, class, outcome, unavailable, retried when not idempotent, retried when idempotent)
    TABLE = [
        (rx.ReadOnlyError("You can't write against a read only replica."), "readonly", "not-executed", True, True, True),
        (rx.BusyLoadingError("Redis is loading the dataset in memory"), "loading", "not-executed", True, True, True),
        (rx.ResponseError("MASTERDOWN Link with MASTER is down"), "masterdown", "not-executed", True, True, True),
        (rx.ResponseError("NOREPLICAS Not enough good replicas to write."), "noreplicas", "not-executed", True, True, True),
        (rx.ResponseError("ERR WAIT cannot be used with replica instances."), "readonly", "not-executed", True, True, True),
        (scripted(rx.ResponseError("NOREPLICAS Not enough good replicas to write.")), "noreplicas", "unknown", True, False, True),
        (rx.TimeoutError("Timeout reading from 127.0.0.1:6379"), "timeout", "unknown", True, False, True),
        (rx.ConnectionError("Connection closed by server."), "connection", "unknown", True, False, True),
        (rx.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"), "command", "failed", False, False, False),
        (rx.ResponseError("WRONGPASS invalid username-password pair or user is disabled."), "auth", "failed", False, False, False),
        (rx.AuthenticationError("Authentication required."), "auth", "failed", False, False, False),
        (rx.NoPermissionError("this user has no permissions"), "auth", "failed", False, False, False),
        (rx.ExecAbortError("Transaction discarded because of previous errors."), "command", "not-executed", False, False, False),
        (NotConnectedError(), "not_connected", "not-executed", True, True, True),
        (CircuitOpenError(), "circuit_open", "not-executed", True, False, False),
        (DeadlineExceededError(100, "unknown"), "deadline", "unknown", True, False, False),
        (WriteNotAcknowledgedError(1, 0, "timeout"), "not_acknowledged", "failed", False, False, False),
        (WriteNotAcknowledgedError(1, 0, "connection-lost"), "not_acknowledged", "unknown", True, False, True),
        (WriteNotAcknowledgedError(1, 1, "failover-started"), "not_acknowledged", "unknown", True, False, True),
        (ValueError("bug"), "other", "unknown", False, False, False),
    ]

    def test_table(self) -> None:
        for err, cls, outcome, unavailable, retried, retried_idem in self.TABLE:
            with self.subTest(err=repr(err)):
                c = classify_error(err)
                self.assertEqual((c.error_class, c.outcome, c.unavailable), (cls, outcome, unavailable))
                self.assertEqual(is_retryable(c, False), retried)
                self.assertEqual(is_retryable(c, True), retried_idem)


class PoliciesTest(unittest.TestCase):
    def policies(self, **kw: int) -> CallPolicies:
        from redis_ha.options import BreakerOptions, RetryOptions

        return CallPolicies(RetryOptions(initial_delay_ms=1, max_delay_ms=2, max_attempts=kw.get("max_attempts", 50)), BreakerOptions(3, 60_000), 1000, sleep=lambda s: None)

    def test_refused_write_is_retried_unknown_write_is_not(self) -> None:
        p = self.policies()
        calls = []

        def refused_then_ok(g):  # type: ignore[no-untyped-def]
            calls.append(1)
            if len(calls) < 3:
                raise rx.ReadOnlyError("You can't write against a read only replica.")
            return "ok"

        self.assertEqual(p.execute(refused_then_ok, idempotent=False, deadline_ms=1000), "ok")
        self.assertEqual(len(calls), 3)

        sent = []

        def times_out(g):  # type: ignore[no-untyped-def]
            g.state.in_flight = True
            sent.append(1)
            raise rx.TimeoutError("Timeout reading from socket")

        with self.assertRaises(OutcomeUnknownError) as ctx:
            p.execute(times_out, idempotent=False, deadline_ms=1000)
        self.assertEqual(len(sent), 1, "a timed-out non-idempotent write must never be sent again")
        self.assertEqual(ctx.exception.outcome, "unknown")
        sent.clear()
        with self.assertRaises(rx.TimeoutError):
            self.policies(max_attempts=4).execute(times_out, idempotent=True, deadline_ms=1000)
        self.assertEqual(len(sent), 5, "an idempotent call is retried after an unknown outcome")

    def test_breaker_counts_unavailable_only(self) -> None:
        p = self.policies(max_attempts=0)

        def wrongtype(g):  # type: ignore[no-untyped-def]
            raise rx.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")

        def down(g):  # type: ignore[no-untyped-def]
            raise NotConnectedError()

        for _ in range(5):
            with self.assertRaises(rx.ResponseError):
                p.execute(wrongtype, False, 1000)
        self.assertEqual(p.breaker.state, CLOSED)
        for _ in range(3):
            with self.assertRaises(NotConnectedError):
                p.execute(down, False, 1000)
        self.assertEqual(p.breaker.state, OPEN)
        with self.assertRaises(CircuitOpenError):
            p.execute(lambda g: "never", False, 1000)

    def test_deadline_errors(self) -> None:
        s = CallState()
        self.assertEqual(deadline_error(100, s).outcome, "not-executed")
        s.saw_unknown = True
        self.assertEqual(deadline_error(100, s).outcome, "unknown")
        s.applied = (0, 1)
        e = deadline_error(100, s)
        self.assertIsInstance(e, WriteNotAcknowledgedError)
        self.assertEqual(e.reason, "timeout")  # type: ignore[attr-defined]


class BreakerTest(unittest.TestCase):
    def test_transitions(self) -> None:
        clock = Clock()
        seen = []
        b = CircuitBreaker(3, 1000, seen.append, now=clock)
        for _ in range(2):
            self.assertEqual(b.admit(), br.CALL)
            b.record(br.CALL, br.UNAVAILABLE)
        b.record(b.admit(), br.SUCCESS)  # a success resets the count
        for _ in range(2):
            b.record(b.admit(), br.UNAVAILABLE)
        b.record(b.admit(), br.NEUTRAL)  # neutral leaves it
        self.assertEqual(b.state, CLOSED)
        b.record(b.admit(), br.UNAVAILABLE)
        self.assertEqual(b.state, OPEN)
        self.assertEqual(b.admit(), br.REFUSED)
        clock.t += 0.999
        self.assertEqual(b.admit(), br.REFUSED)
        clock.t += 0.002
        self.assertEqual(b.admit(), br.PROBE)
        self.assertEqual(b.state, HALF_OPEN)
        self.assertEqual(b.admit(), br.REFUSED, "half-open: one probe only, the others refused at once")
        b.record(br.PROBE, br.UNAVAILABLE)
        self.assertEqual(b.state, OPEN)
        clock.t += 1.0
        b.record(b.admit(), br.NEUTRAL)  # Redis answered (WRONGTYPE): closes
        self.assertEqual(b.state, CLOSED)
        self.assertEqual(seen, [OPEN, HALF_OPEN, OPEN, HALF_OPEN, CLOSED])

    def test_late_call_from_before_open_changes_nothing(self) -> None:
        b = CircuitBreaker(1, 1000, now=Clock())
        a = b.admit()
        b.record(b.admit(), br.UNAVAILABLE)
        b.record(a, br.SUCCESS)
        self.assertEqual(b.state, OPEN)


class StaleCacheTest(unittest.TestCase):
    def test_lru_and_ttl(self) -> None:
        clock = Clock()
        c = StaleCache(2, 1000, now=clock)
        c.set("a", 1)
        c.set("b", 2)
        self.assertEqual(c.get("a"), (1, 0.0))  # a is now the most recent
        c.set("c", 3)
        self.assertIsNone(c.get("b"))
        clock.t += 0.5
        self.assertEqual(c.get("a"), (1, 500.0))
        clock.t += 0.6
        self.assertIsNone(c.get("a"))
        self.assertEqual(len(c), 1)


class OptionsTest(unittest.TestCase):
    def test_every_problem_at_once(self) -> None:
        with self.assertRaises(InvalidOptionsError) as ctx:
            resolve_options(ClientOptions(sentinels=[SentinelEndpoint("", 0)], master_name="my master", timeouts=Timeouts(command_ms=0)))
        paths = [p.path for p in ctx.exception.problems]
        self.assertEqual(paths, ["sentinels[0].host", "sentinels[0].port", "master_name", "timeouts.command_ms"])

    def test_own_region_first_order_kept(self) -> None:
        o = resolve_options(
            ClientOptions(
                sentinels=[SentinelEndpoint("a", 1, "us"), SentinelEndpoint("b", 1, "eu"), SentinelEndpoint("c", 1, "ap"), SentinelEndpoint("d", 1, "eu")],
                master_name="m",
                region="eu",
            )
        )
        self.assertEqual([s.host for s in o.sentinels], ["b", "d", "a", "c"])


STACK_OUTPUTS = {
    "masterName": "mymaster",
    "sentinels": [{"host": "192.0.2.1", "port": 26379, "region": "us-east"}, {"host": "192.0.2.2", "port": 26379, "region": "eu-central"}],
    "nodes": {"redis-us-1": {"address": "192.0.2.1", "region": "us-east"}, "redis-eu-1": {"address": "192.0.2.2", "region": "eu-central"}},
    "redisPassword": "r",
    "sentinelPassword": "s",
    "connectionSnippet": "...",
}
LAB_UP = {
    "stack": "dev",
    "addressing": "ephemeral",
    "masterName": "mymaster",
    "sentinels": [{"host": "10.77.0.2", "port": 26379}, {"host": "10.77.1.2", "port": 26379}],
    "nodes": [
        {"name": "redis-us-1", "region": "us-east", "roles": ["redis", "sentinel"], "host": "10.77.0.2", "redisPort": 6379, "sentinelPort": 26379},
        {"name": "redis-eu-1", "region": "eu-central", "roles": ["redis", "sentinel"], "host": "10.77.1.2", "redisPort": 6379, "sentinelPort": 26379},
    ],
    "redisPassword": "r",
    "sentinelPassword": "s",
    "sshKey": "/x",
}


class DocumentTest(unittest.TestCase):
    def test_stack_outputs_and_lab_document_read_alike(self) -> None:
        for doc in (STACK_OUTPUTS, LAB_UP):
            with self.subTest(doc=doc.get("stack", "stack outputs")):
                o = resolve_options(options_from_document(json.dumps(doc), region="eu-central"))
                self.assertEqual(o.master_name, "mymaster")
                self.assertEqual([s.region for s in o.sentinels], ["eu-central", "us-east"])
                self.assertEqual((o.redis.password, o.sentinel.password), ("r", "s"))
                self.assertEqual(o.durable_replicas, 1)

    def test_durability_level_and_problems(self) -> None:
        self.assertEqual(options_from_document({**LAB_UP, "durability": {"replicas": 2}}).durable_replicas, 2)
        with self.assertRaises(InvalidOptionsError) as ctx:
            options_from_document({"sentinels": [], "redisPassword": 5, "durability": {"replicas": 0}})
        self.assertEqual(
            [p.path for p in ctx.exception.problems],
            ["document.sentinels", "document.masterName", "document.redisPassword", "document.durability.replicas"],
        )


class SentinelMessagesTest(unittest.TestCase):
    def test_parse(self) -> None:
        self.assertEqual(parse_switch_master("mymaster 10.0.0.1 6379 10.0.0.2 6380", "mymaster"), (("10.0.0.1", 6379), ("10.0.0.2", 6380)))
        self.assertIsNone(parse_switch_master("other 10.0.0.1 6379 10.0.0.2 6380", "mymaster"))
        self.assertEqual(parse_try_failover("master mymaster 10.0.0.1 6379", "mymaster"), ("10.0.0.1", 6379))
        self.assertIsNone(parse_try_failover("slave 10.0.0.3:6379 10.0.0.3 6379 @ mymaster 10.0.0.1 6379", "mymaster"))


def answered(g: ReplicaGuard, replica: str) -> None:
    """Waits until the guard's ROLE probe of ``replica`` (a thread) has answered."""
    import time as _t

    for _ in range(500):
        entry = g._gone.get(replica)
        if entry is None or entry["state"] != "asking":
            return
        _t.sleep(0.01)
    raise AssertionError(f"the ROLE probe of {replica} did not answer")


class ReplicaGuardTest(unittest.TestCase):
    def test_promoted_replica_refuses_acks(self) -> None:
        clock = Clock()
        answers = {"r2:1": ("master", None)}
        g = ReplicaGuard(lambda a: answers[a], 2000, 5000, now=clock)
        both = MasterRole(100, [("r1:1", 100), ("r2:1", 100)])
        self.assertIsNone(g.check("m:1", both))
        one = MasterRole(200, [("r1:1", 200)])
        refusal = g.check("m:1", one)
        self.assertIsNotNone(refusal)
        import time as _t

        for _ in range(100):  # the probe runs in a thread
            if g.failover_suspected("m:1"):
                break
            _t.sleep(0.01)
        self.assertTrue(g.failover_suspected("m:1"))
        self.assertEqual(g.check("m:1", one).why, "was promoted or follows another master")  # type: ignore[union-attr]

    def test_resyncing_replica_is_forgotten(self) -> None:
        g = ReplicaGuard(lambda a: ("replica-of", "m:1", "sync"), 2000, 5000, now=Clock())
        g.check("m:1", MasterRole(1, [("r1:1", 1), ("r2:1", 1)]))
        self.assertIsNotNone(g.check("m:1", MasterRole(2, [("r1:1", 2)])))
        answered(g, "r2:1")
        self.assertIsNone(g.check("m:1", MasterRole(3, [("r1:1", 3)])))
        self.assertEqual(g.expected("m:1"), {"r1:1"})

    def test_replica_cut_off_from_the_master_waits_the_grace(self) -> None:
        clock = Clock()
        g = ReplicaGuard(lambda a: ("replica-of", "m:1", "connect"), 2000, 5000, now=clock)
        g.check("m:1", MasterRole(1, [("r1:1", 1), ("r2:1", 1)]))
        self.assertIsNotNone(g.check("m:1", MasterRole(2, [("r1:1", 2)])))
        answered(g, "r2:1")
        clock.t += 4.0
        self.assertEqual(g.check("m:1", MasterRole(3, [("r1:1", 3)])).why, "left the master")  # type: ignore[union-attr]
        self.assertEqual(g.expected_replicas("m:1"), 2)
        clock.t += 1.1
        self.assertIsNone(g.check("m:1", MasterRole(4, [("r1:1", 4)])))
        self.assertEqual(g.expected_replicas("m:1"), 1)

    def test_ask_is_fresh_and_shared(self) -> None:
        clock = Clock()
        asked = []
        g = ReplicaGuard(lambda a: (asked.append(a), ("unreachable", "refused"))[1], 2000, 5000, now=clock)
        clock.t = 1.0
        self.assertEqual(g.ask("r1:1", 1.0), ("unreachable", "refused"))
        g.ask("r1:1", 0.5)
        self.assertEqual(asked, ["r1:1"])
        g.ask("r1:1", 1.5)
        self.assertEqual(asked, ["r1:1", "r1:1"])

    def test_cannot_lack_writes(self) -> None:
        self.assertTrue(cannot_lack_writes(("replica-of", "m:1", "connected"), "m:1"))
        self.assertTrue(cannot_lack_writes(("replica-of", "m:1", "sync"), "m:1"))
        self.assertTrue(cannot_lack_writes(("unreachable", "refused"), "m:1"))
        self.assertFalse(cannot_lack_writes(("replica-of", "m:1", "connecting"), "m:1"))
        self.assertFalse(cannot_lack_writes(("replica-of", "o:1", "connected"), "m:1"))
        self.assertFalse(cannot_lack_writes(("unreachable", None), "m:1"))
        self.assertFalse(cannot_lack_writes(("master", None), "m:1"))

    def test_expected_replicas_and_a_dead_host_still_listed(self) -> None:
        clock = Clock()
        g = ReplicaGuard(lambda a: ("unreachable", None), 2000, 5000, now=clock)
        self.assertEqual(g.expected_replicas("m:1"), 0)
        self.assertIsNone(g.check("m:1", MasterRole(10, [("r1:1", 10), ("r2:1", 10)])))
        self.assertEqual(g.expected_replicas("m:1"), 2)
        self.assertEqual(g.expected_replicas("other:1"), 0)
        # r2's host died: still listed (until repl-timeout), its acked offset stuck.
        clock.t += 2.5
        self.assertEqual(g.check("m:1", MasterRole(50, [("r1:1", 50), ("r2:1", 10)])).why, "stopped acknowledging")  # type: ignore[union-attr]
        answered(g, "r2:1")
        clock.t += 5.1  # past the grace: forgotten while still listed
        self.assertIsNone(g.check("m:1", MasterRole(60, [("r1:1", 60), ("r2:1", 10)])))
        self.assertEqual(g.expected_replicas("m:1"), 1)
        self.assertIsNone(g.check("m:1", MasterRole(70, [("r1:1", 70), ("r2:1", 10)])))
        # It acknowledges again: expected again.
        self.assertIsNone(g.check("m:1", MasterRole(80, [("r1:1", 80), ("r2:1", 80)])))
        self.assertEqual(g.expected_replicas("m:1"), 2)

    def test_parse_role(self) -> None:
        self.assertEqual(parse_master_role([b"master", 10, [[b"1.2.3.4", b"6379", b"9"]]]), MasterRole(10, [("1.2.3.4:6379", 9)]))
        self.assertIsNone(parse_master_role([b"slave", b"1.2.3.4", 6379, b"connected", 10]))


if __name__ == "__main__":
    unittest.main()


class _FakeSentinel:
    """Answers GET-MASTER-ADDR-BY-NAME with ``master`` (None: does not know it), or raises ``error``."""

    def __init__(self, port: int, master=None, error=None) -> None:  # type: ignore[no-untyped-def]
        self.master, self.error = master, error
        self.connection_pool = type("P", (), {"connection_kwargs": {"host": "s", "port": port}, "disconnect": lambda self: None})()

    def execute_command(self, *args):  # type: ignore[no-untyped-def]
        if self.error is not None:
            raise self.error
        return None if self.master is None else [self.master[0], str(self.master[1])]


class SentinelMajorityTest(unittest.TestCase):
    def pool(self, *sentinels: _FakeSentinel) -> MasterPool:
        opts = resolve_options(ClientOptions(sentinels=[SentinelEndpoint("s", f.connection_pool.connection_kwargs["port"]) for f in sentinels], master_name="m"))
        p = MasterPool(opts, lambda old, new, source: None)
        p._sentinels = list(sentinels)  # type: ignore[assignment]
        self.addCleanup(p.close)
        return p

    def test_majority_counted_against_every_configured_sentinel(self) -> None:
        self.assertEqual(judge_answers([(0, ("old", 1)), (1, None), (2, None)], 3), (None, ("old", 1)))
        self.assertEqual(judge_answers([(0, ("old", 1)), (1, ("new", 1)), (2, ("new", 1))], 3), (("new", 1), ("new", 1)))
        # A tie goes to the master the Sentinel listed first names.
        self.assertEqual(judge_answers([(1, ("b", 1)), (0, ("a", 1))], 4), (None, ("a", 1)))

    def test_discovery_follows_the_majority_not_the_first_sentinel(self) -> None:
        p = self.pool(_FakeSentinel(1, ("old", 6379)), _FakeSentinel(2, ("new", 6379)), _FakeSentinel(3, ("new", 6379)))
        self.assertEqual(p.discover(), ("new", 6379))

    def test_without_a_majority_the_most_named_then_the_last_known(self) -> None:
        down = rx.ConnectionError("refused")
        p = self.pool(_FakeSentinel(1, ("old", 6379)), _FakeSentinel(2, error=down), _FakeSentinel(3, error=down))
        self.assertEqual(p.discover(), ("old", 6379))
        p = self.pool(_FakeSentinel(1, error=down), _FakeSentinel(2, error=down), _FakeSentinel(3, error=down))
        with self.assertRaises(NotConnectedError):
            p.discover()
        p.address = ("last", 6379)
        self.assertEqual(p.discover(), ("last", 6379))

    def test_refused_writes_move_the_pool_to_the_majority_master(self) -> None:
        p = self.pool(_FakeSentinel(1, ("old", 6379)), _FakeSentinel(2, ("new", 6379)), _FakeSentinel(3, ("new", 6379)))
        p.address = ("old", 6379)
        p.refused_write()
        self.assertIsNone(p._majority_check, "a single refusal asks nothing (a just-promoted master refuses briefly)")
        p._refusals_since -= 2  # the refusals have gone on for two seconds
        p.refused_write()
        check = p._majority_check
        assert check is not None
        check.result(timeout=5)
        self.assertEqual(p.address, ("new", 6379))
