"""Whether a WAIT acknowledgement on a master can be trusted, from the ROLE reply sent on the same connection
right after WAIT. The same rules as client/replicaGuard.ts (read its doc comment for the why): every replica this
client has seen on this master must still be attached and acknowledging; one that left is asked its ROLE:
a replica of this master streaming from it or loading its snapshot (resyncing) is forgotten until it returns; a
master or a replica of another master refuses every acknowledgement on this master; a replica of this master cut
off from it (link down: alive, and promotable on the far side of a partition) or unreachable refuses them for
``grace_ms``, then is forgotten. Forgetting changes what later writes wait for, never what a write already sent
needs: durable_write freezes ``expected()`` as the write goes out and asks each forgotten member again (``ask``)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import redis

from .options import ClientOptions
from .redis_options import no_replay


def _t(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


@dataclass(frozen=True)
class MasterRole:
    offset: int
    replicas: List[Tuple[str, int]]  # (address "ip:port", acked offset)


def parse_master_role(reply: Any) -> Optional[MasterRole]:
    """ROLE -> MasterRole (``["master", offset, [[ip, port, offset], ...]]``); None when not a master."""
    if not isinstance(reply, (list, tuple)) or not reply or _t(reply[0]) != "master":
        return None
    reps = []
    for r in reply[2] if len(reply) > 2 and isinstance(reply[2], (list, tuple)) else []:
        if isinstance(r, (list, tuple)) and len(r) >= 3:
            reps.append((f"{_t(r[0])}:{_t(r[1])}", int(_t(r[2]))))
    return MasterRole(offset=int(reply[1]), replicas=reps)


# What a replica that left says about itself: ("replica-of", "host:port", link) with link its ROLE link state
# ("connected", "sync", "connect", "connecting", "handshake") | ("master", None) | ("unreachable", None) |
# ("unreachable", "refused") when nothing listens at its address (the process is gone, not merely cut off).
ReplicaState = Tuple[Any, ...]
RoleProbe = Callable[[str], ReplicaState]


def _streams_from(state: ReplicaState, master: str) -> bool:
    """A replica of ``master`` whose link to it is up (streaming) or loading its snapshot."""
    return state[0] == "replica-of" and state[1] == master and len(state) > 2 and state[2] in ("connected", "sync")


def cannot_lack_writes(state: ReplicaState, master: str) -> bool:
    """True when ``state`` proves that the replica cannot be promoted without the writes ``master`` applied so far:
    it streams from ``master`` or loads its snapshot, or its process is gone (connection refused). Alive and cut off
    from the master, unreachable by timeout (a partition looks the same), or following another master proves
    nothing (client/replicaGuard.ts cannotLackWrites)."""
    if state[0] == "unreachable":
        return state[1] == "refused"
    return _streams_from(state, master)


@dataclass(frozen=True)
class GuardRefusal:
    replica: str
    why: str

    def __str__(self) -> str:
        return f"replica {self.replica} {self.why}"


def _elsewhere(state: ReplicaState, master: str) -> bool:
    return state[0] == "master" or (state[0] == "replica-of" and state[1] != master)


class ReplicaGuard:
    def __init__(self, probe: RoleProbe, stall_ms: float, grace_ms: float, now: Callable[[], float] = time.monotonic):
        self._probe = probe
        self._stall_ms = stall_ms
        self._grace_ms = grace_ms
        self._now = now
        self._master: Optional[str] = None
        self._seen: Dict[str, Tuple[int, float]] = {}
        self._gone: Dict[str, Dict[str, Any]] = {}
        #: Replicas forgotten while the master still lists them (a host that died keeps its link until
        #: repl-timeout), with the acked offset they were forgotten at: not expected again until it moves.
        self._forgotten: Dict[str, int] = {}
        #: The latest fresh ROLE asked of each replica by ask(), shared by the writes waiting at the same time.
        self._asked: Dict[str, Dict[str, Any]] = {}
        self._lock = threading.Lock()

    def check(self, master: str, role: MasterRole) -> Optional[GuardRefusal]:
        with self._lock:
            if master != self._master:
                self._master = master
                self._seen.clear()
                self._gone.clear()
                self._forgotten.clear()
            now = self._now()
            listed = set()
            for a, off in role.replicas:
                forgotten_at = self._forgotten.get(a)
                if forgotten_at is not None and off <= forgotten_at:
                    continue
                self._forgotten.pop(a, None)
                listed.add(a)
                known = self._seen.get(a)
                advanced = known is None or off > known[0]
                if advanced:
                    self._seen[a] = (off, now)
                # Attached and acknowledging again: what it said before no longer matters. A listed replica that
                # is not keeps its record, so its grace runs out and it is forgotten.
                if advanced or off >= role.offset:
                    self._gone.pop(a, None)
            refusal: Optional[GuardRefusal] = None
            for a, (off, advanced_at) in list(self._seen.items()):
                missing = a not in listed
                stalled = not missing and off < role.offset and (now - advanced_at) * 1000 > self._stall_ms
                if not missing and not stalled:
                    continue
                why = self._judge(master, a, now)
                if why and refusal is None:
                    refusal = GuardRefusal(a, why if missing else "stopped acknowledging")
                elif why is None and not missing:
                    self._forgotten[a] = off
            return refusal

    def expected_replicas(self, master: str) -> int:
        """How many replicas of ``master`` a durable write must reach so that no replica a failover could promote
        lacks it: every replica seen attached and acknowledging, and not forgotten. A replica that Sentinel
        promotes leaves the old master at once, so a WAIT for this many can no longer be met by the others
        alone, whether or not the master has noticed the departure yet."""
        with self._lock:
            return len(self._seen) if master == self._master else 0

    def expected(self, master: str) -> Set[str]:
        """The replicas expected_replicas counts, by address (a copy)."""
        with self._lock:
            return set(self._seen) if master == self._master else set()

    def clock(self) -> float:
        """This guard's clock (the one ask's ``not_before`` is on)."""
        return self._now()

    def ask(self, address: str, not_before: float) -> ReplicaState:
        """The replica's state asked now: a probe started at or after ``not_before`` is shared, so the writes that
        waited together ask once. Never an answer from before ``not_before``."""
        with self._lock:
            last = self._asked.get(address)
            mine = last is None or last["at"] < not_before
            if mine:
                last = {"at": self._now(), "done": threading.Event(), "state": ("unreachable", None)}
                self._asked[address] = last
        assert last is not None
        if mine:
            try:
                last["state"] = self._probe(address)
            except Exception:  # noqa: BLE001
                last["state"] = ("unreachable", None)
            finally:
                last["done"].set()
        else:
            last["done"].wait(10)
        return last["state"]

    def failover_suspected(self, master: str) -> bool:
        with self._lock:
            if master != self._master:
                return False
            return any(g["state"] != "asking" and _elsewhere(g["state"], master) for g in self._gone.values())

    def _judge(self, master: str, a: str, now: float) -> Optional[str]:
        g = self._gone.get(a)
        if g is None:
            entry: Dict[str, Any] = {"since": now, "state": "asking"}
            self._gone[a] = entry

            def ask() -> None:
                try:
                    st = self._probe(a)
                except Exception:  # noqa: BLE001
                    st = ("unreachable", None)
                with self._lock:
                    if self._gone.get(a) is entry:
                        entry["state"] = st

            threading.Thread(target=ask, daemon=True, name=f"redis-ha-role-{a}").start()
            return "left the master"
        st = g["state"]
        if st == "asking":
            return "left the master"
        if _elsewhere(st, master):
            return "was promoted or follows another master"
        # Streaming or resyncing from this master, or gone (or cut off) for longer than the grace. A refused
        # connection waits out the grace too: the process may be restarting, and comes back with older data.
        if _streams_from(st, master) or (now - g["since"]) * 1000 > self._grace_ms:
            self._seen.pop(a, None)
            self._gone.pop(a, None)
            return None
        return "left the master"


def role_probe(opts: ClientOptions) -> RoleProbe:
    """A RoleProbe over a short-lived connection with the client's Redis credentials, bounded by health_ms."""

    def probe(address: str) -> ReplicaState:
        host, _, port = address.rpartition(":")
        t = opts.timeouts.health_ms / 1000
        r = redis.Redis(
            host=host, port=int(port), username=opts.redis.username, password=opts.redis.password,
            socket_timeout=t, socket_connect_timeout=t, **no_replay(), **(opts.redis.ssl or {}),
        )
        try:
            role = r.execute_command("ROLE")
            if _t(role[0]) == "master":
                return ("master", None)
            return ("replica-of", f"{_t(role[1])}:{_t(role[2])}", _t(role[3]))
        except Exception as e:  # noqa: BLE001
            refused = isinstance(e.__context__, ConnectionRefusedError) or "Connection refused" in str(e)
            return ("unreachable", "refused" if refused else None)
        finally:
            r.connection_pool.disconnect()

    return probe
