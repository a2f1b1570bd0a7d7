"""One attempt of a durable write (client/durableWrite.ts): the caller's commands, WAIT and ROLE go out as ONE
pipeline in one socket write on one connection, so the acknowledgement can only be about this write. A short
count repeats WAIT + ROLE on the same connection, never the write. The acknowledgement counts only if

- it came back on the connection the write went out on, and that connection is still on the current master
  (epoch unchanged: no switch, and redis-py did not reconnect it behind our back: HAConnection refuses that),
- no Sentinel announced a failover of that master (+try-failover) between the write and the reply, and
- the ROLE reply shows every replica seen on this master still attached and acknowledging (ReplicaGuard).

redis-py's own replay is off (redis_options.no_replay), so the write is never sent twice by redis-py; the retry
policy re-sends it only for durable writes declared idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple

from redis import exceptions as rx

from .classify import SCRIPT_MARK, classify_error
from .connection import HAConnection, MasterPool, addr, build_pipeline
from .errors import NOT_EXECUTED, NotConnectedError, PartiallyAppliedError, WriteNotAcknowledgedError
from .replica_guard import MasterRole, ReplicaGuard, cannot_lack_writes, parse_master_role
from .state import DeadlinePassed, Guard

#: Default WAIT timeout of one round, ms.
DEFAULT_WAIT_TIMEOUT_MS = 200

#: Which replicas must confirm a durable write (client/durableWrite.ts ``Durability``):
#: ``"attached"``: every replica attached to the master and acknowledging (as the last ROLE showed it), and at
#: least ``replicas``; whatever replica a failover promotes has the write, even in a failover this client never
#: heard of. Costs the slowest replica's round trip. ``"count"``: ``replicas`` replicas (plain WAIT n); cheaper
#: with far replicas, but a replica promoted before the old master noticed can be outvoted and the write lost.
DURABILITIES = ("attached", "count")


@dataclass(frozen=True)
class DurableWriteResult:
    #: Replicas that confirmed (>= the number asked for).
    acknowledged: int
    #: Replies of the commands the callback queued, in order (the EXEC reply's items with transaction=True).
    results: List[Any]
    #: Connection epoch the write and its acknowledgement travelled on.
    epoch: int


def _read(conn: HAConnection) -> Tuple[Optional[BaseException], Any]:
    """One reply: (error, None) for a Redis error reply, (None, value) otherwise; socket errors raise."""
    try:
        return None, conn.read_response()
    except rx.ResponseError as e:
        return e, None


def attempt(
    pool: MasterPool,
    replica_guard: ReplicaGuard,
    build: Callable[[Any], Any],
    demand: int,
    durability: str,
    timeout_ms: int,
    transaction: bool,
    guard: Guard,
) -> DurableWriteResult:
    state = guard.state
    conn = pool.acquire(guard)
    reusable = False
    try:
        epoch = conn.epoch
        master = conn.address
        master_text = addr(master) or ""

        def required() -> int:
            # Computed again before every WAIT: the guard's view of the attached replicas changes with each ROLE.
            if durability == "count":
                return demand
            return max(demand, replica_guard.expected_replicas(master_text))

        replicas = required()
        # "attached": the replicas this write must reach, frozen as it goes out. The count follows the guard down
        # when it forgets one while the write waits (a crash does not fail every waiting write); each forgotten
        # member is then asked whether it can lack the write before the write resolves (_verify_forgotten).
        basis = replica_guard.expected(master_text) if durability == "attached" and master_text else set()
        sent_at = replica_guard.clock()
        fences = pool.fences.get(master, 0)
        sock = conn._sock

        def same() -> bool:
            return conn._sock is sock and sock is not None and pool.epoch == epoch and pool.fences.get(master, 0) == fences

        def lost() -> str:
            return "failover-started" if pool.fences.get(master, 0) != fences else "connection-lost"

        pipe = build_pipeline(conn)
        build(pipe)
        stack = list(pipe.command_stack)
        pipe.command_stack = []
        if not stack:
            raise ValueError("durable_write: the callback queued no command on the pipeline it was given")
        cmds = [args for args, _ in stack]
        if transaction:
            cmds = [("MULTI",)] + cmds + [("EXEC",)]
        conn.guard = guard
        conn.send_packed_command(conn.pack_commands(cmds + [("WAIT", replicas, _wait_ms(timeout_ms, guard)), ("ROLE",)]))

        replies = [_read(conn) for _ in cmds]
        results: List[Any] = []
        first_error: Optional[BaseException] = None
        applied = 0
        if transaction:
            # MULTI's OK, QUEUED or a refusal per command, then EXEC: the items or EXECABORT.
            queued = replies[1:-1]
            exec_err, exec_val = replies[-1]
            refusal = next((e for e, _ in queued if e is not None), None)
            if exec_err is not None or exec_val is None:
                # EXECABORT after a queue-time refusal: nothing ran; raise that refusal (as redis-py does).
                raise refusal or exec_err or rx.WatchError("EXEC aborted")
            for (args, options), value in zip(stack, exec_val):
                if isinstance(value, rx.ResponseError):
                    first_error = first_error or value
                    results.append(value)
                    continue
                applied += 1
                results.append(_callback(conn, args, options, value))
        else:
            for (args, options), (err, value) in zip(stack, replies):
                if err is not None:
                    first_error = first_error or err
                    results.append(err)
                else:
                    applied += 1
                    results.append(_callback(conn, args, options, value))
        if first_error is not None:
            if state.sent_script:
                setattr(first_error, SCRIPT_MARK, True)
            # All refused: nothing applied, the policy may send it again. Some applied: never retried.
            if applied > 0 and classify_error(first_error).outcome == NOT_EXECUTED:
                raise PartiallyAppliedError(applied, len(stack), first_error)
            raise first_error

        # Applied on the master: only WAIT is outstanding from here on, which applies nothing.
        state.in_flight = False
        state.applied = (0, replicas)
        try:
            wait_err, wait_val = _read(conn)
            role_err, role_val = _read(conn)
        except Exception as e:  # noqa: BLE001 - the socket failed or timed out after the write was applied
            if guard.remaining() <= 0:
                raise WriteNotAcknowledgedError(replicas, 0, "timeout", e) from e
            pool.suspect()
            raise WriteNotAcknowledgedError(replicas, 0, lost(), e) from e
        if not same():
            raise WriteNotAcknowledgedError(replicas, 0, lost())
        if wait_err is not None:
            cls = classify_error(wait_err)
            reason = "connection-lost" if cls.unavailable and cls.error_class != "readonly" else "wait-error"
            raise WriteNotAcknowledgedError(replicas, 0, reason, wait_err)
        acknowledged = int(wait_val)
        state.applied = (acknowledged, replicas)
        # The master's offset right after our write (ROLE follows it): a replica acked at or past it holds it.
        last_role = None if role_err is not None else parse_master_role(role_val)
        write_offset = last_role.offset if last_role is not None else None
        replicas = _judge(pool, conn, replica_guard, acknowledged, replicas, required, role_err, role_val)
        while acknowledged < replicas:
            if guard.remaining() <= 0:
                raise WriteNotAcknowledgedError(replicas, acknowledged, "timeout")
            if not same():
                raise WriteNotAcknowledgedError(replicas, acknowledged, lost())
            # Same connection: WAIT covers every write this connection made, ours included, without resending it.
            try:
                conn.send_packed_command(conn.pack_commands([("WAIT", replicas, _wait_ms(timeout_ms, guard)), ("ROLE",)]))
                state.in_flight = False  # WAIT applies nothing
                wait_err, more = _read(conn)
                role_err, role_val = _read(conn)
            except DeadlinePassed as e:
                raise WriteNotAcknowledgedError(replicas, acknowledged, "timeout", e) from e
            except NotConnectedError as e:
                raise WriteNotAcknowledgedError(replicas, acknowledged, lost(), e) from e
            except Exception as e:  # noqa: BLE001
                reason = "timeout" if guard.remaining() <= 0 else "connection-lost"
                raise WriteNotAcknowledgedError(replicas, acknowledged, reason, e) from e
            if not same():
                raise WriteNotAcknowledgedError(replicas, acknowledged, lost())
            if wait_err is not None:
                raise WriteNotAcknowledgedError(replicas, acknowledged, "connection-lost", wait_err)
            # WAIT counts replicas at our offset now; with "attached", replicas may have been forgotten since.
            acknowledged = int(more)
            state.applied = (acknowledged, replicas)
            last_role = None if role_err is not None else parse_master_role(role_val)
            replicas = _judge(pool, conn, replica_guard, acknowledged, replicas, required, role_err, role_val)
        reusable = True
        _verify_forgotten(pool, conn, replica_guard, basis, write_offset, last_role, sent_at, replicas, acknowledged)
        return DurableWriteResult(acknowledged=acknowledged, results=results, epoch=epoch)
    except (rx.TimeoutError, rx.ReadOnlyError):
        pool.suspect()
        raise
    finally:
        pool.release(conn, reusable)


def _verify_forgotten(
    pool: MasterPool,
    conn: HAConnection,
    replica_guard: ReplicaGuard,
    basis: set,
    write_offset: Optional[int],
    last_role: Optional[MasterRole],
    sent_at: float,
    replicas: int,
    acknowledged: int,
) -> None:
    """The last step of an "attached" acknowledgement (client/durableWrite.ts verifyForgotten): every replica that
    was expected when the write went out and that the guard has forgotten since must be proven unable to lack the
    write (the last ROLE lists it acked past the write's offset; or, asked now, it streams from this master or loads
    its snapshot, or nothing listens at its address), or the write fails "replicas-unverified" (outcome unknown:
    an idempotent write is sent again, expecting only the replicas left)."""
    master = addr(conn.address)
    if not basis or master is None:
        return
    expected = replica_guard.expected(master)
    for replica in sorted(basis):
        if replica in expected:
            continue  # counted by WAIT, trusted by the guard
        listed = next((off for a, off in last_role.replicas if a == replica), None) if last_role else None
        if listed is not None and write_offset is not None and listed >= write_offset:
            continue
        st = replica_guard.ask(replica, sent_at)
        if cannot_lack_writes(st, master):
            continue
        if st[0] == "master" or (st[0] == "replica-of" and st[1] != master):
            pool.fence(conn.address, pool.opts.timeouts.failover_fence_ms)
            pool.suspect()
        said = (
            "does not answer" if st[0] == "unreachable"
            else "is a master" if st[0] == "master"
            else f"is cut off from the master (link {st[2] if len(st) > 2 else 'unknown'})" if st[1] == master
            else f"follows {st[1]}"
        )
        raise WriteNotAcknowledgedError(
            replicas, acknowledged, "replicas-unverified", Exception(f"replica {replica} was forgotten while the write waited and {said}")
        )


def _wait_ms(timeout_ms: int, guard: Guard) -> int:
    """WAIT's timeout, cut so that its reply comes before the call's deadline (never 0: WAIT 0 blocks forever)."""
    return max(1, min(timeout_ms, int(guard.remaining() * 1000) - 5))


def _callback(conn: HAConnection, args: Tuple[Any, ...], options: dict, value: Any) -> Any:
    name = args[0]
    cb = conn.client.response_callbacks.get(name)
    return cb(value, **options) if cb else value


def _judge(
    pool: MasterPool,
    conn: HAConnection,
    replica_guard: ReplicaGuard,
    acknowledged: int,
    replicas: int,
    required: Callable[[], int],
    role_err: Optional[BaseException],
    role_val: Any,
) -> int:
    """Judges one WAIT count with the ROLE that followed it on the same connection; returns the count to wait for
    next (the loop ends once ``acknowledged`` reaches it). The count is trusted only if the guard trusts every
    replica it has seen on this master. With "attached" the count to reach follows the guard: a replica seen for
    the first time raises it, a forgotten one lowers it. A short count is not final: WAIT is asked again until the
    deadline."""
    met = acknowledged >= replicas
    role = None if role_err is not None else parse_master_role(role_val)
    master = addr(conn.address)
    if role is None or master is None:
        if not met:
            return replicas
        raise WriteNotAcknowledgedError(replicas, acknowledged, "replicas-unverified", role_err)
    refusal = replica_guard.check(master, role)
    nxt = max(replicas, required()) if met else min(replicas, required())
    if refusal is not None and (met or acknowledged >= nxt):
        if replica_guard.failover_suspected(master):
            # A replica of this master is a master now, or follows another one: a failover is under way that no
            # Sentinel message told us about. Send nothing here for failover_fence_ms (or until the switch), and
            # make the next connection ask Sentinel again (client/connection.ts leaveSuspectedMaster).
            pool.fence(conn.address, pool.opts.timeouts.failover_fence_ms)
            pool.suspect()
        raise WriteNotAcknowledgedError(replicas, acknowledged, "replicas-unverified", Exception(str(refusal)))
    return nxt
