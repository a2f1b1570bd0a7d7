"""The master's connections: Sentinel discovery (own region first), a pool of verified connections, the epoch
that every (re)discovery of a different master bumps, the failover fence, and the send-time checks of a call.

- A new connection is made only to the address a majority of the Sentinels names now (every Sentinel is asked at
  once; without a majority, the address most answering Sentinels name, else the last known master), and is used
  only once ``ROLE`` on it says ``master`` (ioredis' ready check does the same). A Sentinel cut off with the old
  master (the client's own region lost) names it still; it must never outvote the Sentinels it cannot reach.
- Writes refused with NOREPLICAS for a second (a master fenced by redis-fence) make the pool ask the Sentinels
  again, and move to the master a majority names.
- On a switch to another master (Sentinel's +switch-master, or discovery naming another address) every socket to
  the old master is shut down, also those with a call blocked on them: a hung master never answers, and the calls
  would otherwise wait for their command timeout (the "30 s on a hang" of FACTS.md).
- While a Sentinel fails the master over (+try-failover), nothing is sent to it for ``failover_fence_ms`` or until
  the switch: Sentinel lets the old master take writes while it promotes a replica.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
import weakref
from typing import Any, Callable, Dict, List, Optional, Tuple

import redis
from redis import exceptions as rx
from redis.client import Pipeline

from .errors import AuthenticationError, ClientClosedError, NotConnectedError
from .options import ClientOptions
from .redis_options import master_connection_kwargs, sentinel_connection_kwargs
from .state import DeadlinePassed, Guard, is_script

log = logging.getLogger("redis_ha")

Address = Tuple[str, int]


def addr(a: Optional[Address]) -> Optional[str]:
    return None if a is None else f"{a[0]}:{a[1]}"


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _auth_refused(err: BaseException) -> bool:
    if isinstance(err, (rx.AuthenticationError, rx.NoPermissionError, rx.AuthorizationError)):
        return True
    return isinstance(err, rx.ResponseError) and str(err).startswith(("WRONGPASS", "NOAUTH", "NOPERM"))


def judge_answers(answers: List[Tuple[int, Optional[Address]]], total: int) -> Tuple[Optional[Address], Optional[Address]]:
    """``(majority, plurality)`` from ``(sentinel index, named master or None)`` answers of ``total`` configured
    Sentinels: the master more than half of ALL of them name (not of those that answered), and the one most answers
    name (a tie goes to the Sentinel listed first)."""
    votes: Dict[Address, int] = {}
    first: Dict[Address, int] = {}
    for i, master in answers:
        if master is None:
            continue
        votes[master] = votes.get(master, 0) + 1
        first[master] = min(first.get(master, i), i)
    majority = next((m for m, n in votes.items() if n > total // 2), None)
    plurality = min(votes, key=lambda m: (-votes[m], first[m])) if votes else None
    return majority, plurality


#: A write refusal streak (NOREPLICAS, gaps under a second) this long makes the pool ask the Sentinel majority.
REFUSAL_STREAK_S = 1.0
#: Least time between two such questions.
MAJORITY_CHECK_INTERVAL_S = 1.0


class HAConnection(redis.Connection):
    """A redis-py connection that refuses to write once its call's deadline passed or its master was left,
    marks its call in flight right before writing, and bounds every wait by the call's deadline."""

    def __init__(self, pool: "MasterPool", epoch: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.owner = weakref.proxy(pool)
        self.epoch = epoch
        self.guard: Optional[Guard] = None
        self.pinned = _PinnedPool(self)
        #: A redis.Redis whose every command and pipeline goes through this one connection.
        self.client = redis.Redis(connection_pool=self.pinned)

    @property
    def address(self) -> Address:
        return (self.host, self.port)

    def pack_command(self, *args: Any) -> Any:
        g = self.guard
        if g is not None and is_script(args):
            g.state.sent_script = True
        return super().pack_command(*args)

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        g = self.guard
        if g is not None:
            if g.remaining() <= 0:
                raise DeadlinePassed()
            if self._sock is None:
                # redis-py would reconnect to the same address without asking Sentinel or checking ROLE.
                raise NotConnectedError(detail="the connection was closed")
            refusal = self.owner.refusal(self)
            if refusal:
                raise NotConnectedError(detail=refusal)
            self._sock.settimeout(g.timeout())
            g.state.in_flight = True
        super().send_packed_command(command, check_health=False)

    def read_response(self, disable_decoding: bool = False) -> Any:
        g = self.guard
        if g is not None and self._sock is not None:
            self._sock.settimeout(g.timeout())
        return super().read_response(disable_decoding=disable_decoding)

    def abort(self) -> None:
        """Wakes a call blocked on this socket (from another thread): its read fails at once."""
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class HASSLConnection(HAConnection, redis.SSLConnection):
    """HAConnection over TLS (stack config ``tls: true``): SSLConnection takes the ``ssl_*`` keyword arguments."""


class _PinnedPool:
    """The minimal pool interface redis.Redis and Pipeline use (4.3.4: get_connection, release, get_encoder,
    connection_kwargs), always handing out one connection."""

    def __init__(self, conn: HAConnection):
        self._conn = weakref.proxy(conn)
        self.connection_kwargs: Dict[str, Any] = {}

    def get_connection(self, command_name: str, *keys: Any, **options: Any) -> HAConnection:
        return self._conn  # type: ignore[return-value]

    def release(self, connection: Any) -> None:
        pass

    def get_encoder(self) -> Any:
        return self._conn.encoder

    def disconnect(self, *args: Any) -> None:
        pass


class MasterPool:
    def __init__(self, opts: ClientOptions, on_switch: Callable[[Optional[str], str, str], None]):
        self.opts = opts
        self._on_switch = on_switch
        self._kwargs = master_connection_kwargs(opts)
        self._sentinels = [
            redis.Redis(host=s.host, port=s.port, **sentinel_connection_kwargs(opts, opts.timeouts.sentinel_command_ms))
            for s in opts.sentinels
        ]
        # One thread per Sentinel (they are asked at once; an unreachable one is not waited for), one for the check
        # that refused writes start (it waits for the others).
        self._asker = ThreadPoolExecutor(max_workers=len(self._sentinels) + 1, thread_name_prefix="redis-ha-sentinel")
        self._refusals_since = 0.0
        self._last_refusal = 0.0
        self._last_majority_check = 0.0
        self._majority_check: Optional[Future[None]] = None
        self.address: Optional[Address] = None
        self.epoch = 0
        self._idle: List[HAConnection] = []
        self._all: "weakref.WeakSet[HAConnection]" = weakref.WeakSet()
        self._cond = threading.Condition()
        self._fenced: Optional[Tuple[Address, float]] = None
        #: +try-failover announcements per master address: a durable write's acknowledgement counts only if this
        #: did not change between its write and its WAIT reply.
        self.fences: Dict[Address, int] = {}
        self.closed = False

    # -- failover events ---------------------------------------------------------------------------------
    def fence(self, master: Address, ms: int) -> None:
        with self._cond:
            self.fences[master] = self.fences.get(master, 0) + 1
            if master == self.address:
                self._fenced = (master, time.monotonic() + ms / 1000)

    def switch(self, new: Address, source: str) -> None:
        """The master is now ``new``: bump the epoch, drop every socket to another address."""
        with self._cond:
            if new == self.address:
                return
            old = self.address
            self.address = new
            self.epoch += 1
            self._fenced = None
            stale = [c for c in self._all if c.address != new]
            self._idle = [c for c in self._idle if c.address == new]
            self._cond.notify_all()
        for c in stale:
            c.abort()
        if old is not None:
            self._on_switch(addr(old), addr(new) or "", source)

    def suspect(self) -> None:
        """A command timed out or met READONLY: drop the idle connections (a hung master leaves them open and
        silent), so that the next call makes a new one, which asks Sentinel first."""
        with self._cond:
            idle, self._idle = self._idle, []
        for c in idle:
            c.disconnect()

    def wait_change(self, seconds: float) -> None:
        """Sleeps up to ``seconds``; wakes early when the master changes (a retry backoff need not outlast it)."""
        if seconds <= 0:
            return
        with self._cond:
            epoch = self.epoch
            self._cond.wait_for(lambda: self.epoch != epoch or self.closed, timeout=seconds)

    def refusal(self, conn: HAConnection) -> Optional[str]:
        """Why ``conn`` may not send now, or None."""
        if self.closed:
            return "the client was closed"
        if conn.epoch != self.epoch:
            return f"the master changed from {addr(conn.address)}"
        f = self._fenced
        if f is not None and f[0] == conn.address and time.monotonic() < f[1]:
            return f"Sentinel is failing over {addr(f[0])}"
        return None

    # -- connections -------------------------------------------------------------------------------------
    def acquire(self, guard: Guard) -> HAConnection:
        """A ready connection to the current master, or NotConnectedError/AuthenticationError (nothing sent)."""
        while True:
            if self.closed:
                raise ClientClosedError()
            with self._cond:
                f = self._fenced
                if f is not None and time.monotonic() >= f[1]:
                    self._fenced = f = None
                if f is not None:
                    wait = min(f[1] - time.monotonic(), guard.remaining())
                    if wait <= 0:
                        raise DeadlinePassed() if guard.remaining() <= 0 else NotConnectedError(detail="failover in progress")
                    self._cond.wait(timeout=wait)
                    continue
                while self._idle:
                    c = self._idle.pop()
                    if c.epoch == self.epoch and c._sock is not None:
                        return c
                    c.disconnect()
            return self._connect(guard)

    def release(self, conn: HAConnection, reusable: bool) -> None:
        conn.guard = None
        with self._cond:
            if reusable and not self.closed and conn.epoch == self.epoch and conn._sock is not None:
                self._idle.append(conn)
                return
        conn.disconnect()

    def _ask(self, s: redis.Redis) -> Optional[Address]:
        reply = s.execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", self.opts.master_name)
        return (_text(reply[0]), int(reply[1])) if reply else None

    def ask_sentinels(self, guard: Optional[Guard] = None) -> Tuple[Optional[Address], Optional[Address], List[str]]:
        """Asks every Sentinel at once; returns ``(majority, plurality, errors)`` as soon as a majority names one
        master, else once every one answered or failed (or the call's deadline passed)."""
        futures = {self._asker.submit(self._ask, s): i for i, s in enumerate(self._sentinels)}
        answers: List[Tuple[int, Optional[Address]]] = []
        errors: List[str] = []
        refused: Optional[BaseException] = None
        pending = set(futures)
        while pending:
            timeout = None if guard is None else max(0.0, guard.remaining())
            done, pending = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
            if not done:
                break  # the deadline passed
            for f in done:
                i = futures[f]
                kw = self._sentinels[i].connection_pool.connection_kwargs
                e = f.exception()
                if e is not None:
                    refused = refused or (e if _auth_refused(e) else None)
                    errors.append(f"{kw['host']}:{kw['port']}: {e}")
                    answers.append((i, None))
                    continue
                master = f.result()
                if master is None:
                    errors.append(f"{kw['host']}:{kw['port']}: does not know {self.opts.master_name!r}")
                answers.append((i, master))
            majority, _ = judge_answers(answers, len(self._sentinels))
            if majority is not None:
                return majority, majority, errors
        majority, plurality = judge_answers(answers, len(self._sentinels))
        if majority is None and plurality is None and refused is not None:
            raise AuthenticationError("sentinel", refused) from refused
        return majority, plurality, errors

    def discover(self, guard: Optional[Guard] = None) -> Address:
        """The master a majority of the Sentinels names; without a majority (Sentinels down or cut off), the one
        most answering Sentinels name, else the last known master (its ROLE is still checked on connect)."""
        if guard is not None and guard.remaining() <= 0:
            raise DeadlinePassed()
        majority, plurality, errors = self.ask_sentinels(guard)
        found = majority or plurality or self.address
        if found is not None:
            return found
        if guard is not None and guard.remaining() <= 0:
            raise DeadlinePassed()
        raise NotConnectedError(detail="no Sentinel named a master (" + "; ".join(errors) + ")")

    def refused_write(self) -> None:
        """A write was refused with NOREPLICAS. After a streak of :data:`REFUSAL_STREAK_S`, ask every Sentinel (at
        most once per :data:`MAJORITY_CHECK_INTERVAL_S`, in the background) and move to the master a majority names
        if that is another one: this master may be one only a cut-off minority still names (fenced)."""
        now = time.monotonic()
        with self._cond:
            if now - self._last_refusal > REFUSAL_STREAK_S:
                self._refusals_since = now
            self._last_refusal = now
            if self.closed or now - self._refusals_since < REFUSAL_STREAK_S:
                return
            if self._majority_check is not None or now - self._last_majority_check < MAJORITY_CHECK_INTERVAL_S:
                return
            self._last_majority_check = now
            here = self.address
            self._majority_check = self._asker.submit(self._follow_majority, here)

    def _follow_majority(self, here: Optional[Address]) -> None:
        try:
            majority, _, _ = self.ask_sentinels()
            if majority is not None and majority != here and self.address == here and not self.closed:
                self.switch(majority, "majority")
        except Exception:  # noqa: BLE001 - a failed check changes nothing; the next refusal asks again
            log.debug("redis_ha: asking the Sentinel majority failed", exc_info=True)
        finally:
            with self._cond:
                self._majority_check = None

    def _connect(self, guard: Guard) -> HAConnection:
        # Every new connection asks Sentinel first (one round trip, rare: connections are reused), so a client
        # that missed +switch-master still finds the new master on its next connection.
        target = self.discover(guard)
        if target != self.address:
            self.switch(target, "discovery")
        remaining = guard.remaining()
        if remaining <= 0:
            raise DeadlinePassed()
        kwargs = dict(self._kwargs)
        kwargs["socket_connect_timeout"] = min(kwargs["socket_connect_timeout"], remaining)
        # The AUTH/ROLE handshake is bounded like a command (a hung master accepts TCP but never answers).
        kwargs["socket_timeout"] = guard.timeout()
        with self._cond:
            epoch = self.epoch
        # ``ssl`` picks the class (redis.Redis does the same with it); the ``ssl_*`` arguments go to SSLConnection.
        cls = HASSLConnection if kwargs.pop("ssl", False) else HAConnection
        conn = cls(self, epoch, host=target[0], port=target[1], **kwargs)
        with self._cond:
            # Registered before the handshake: a switch then also wakes an AUTH blocked on a hung master.
            self._all.add(conn)
        try:
            conn.connect()
            conn.send_command("ROLE", check_health=False)
            role = conn.read_response()
        except Exception as e:  # noqa: BLE001 - every connect failure means nothing of the call was sent
            conn.disconnect()
            if _auth_refused(e):
                raise AuthenticationError("redis", e) from e
            if isinstance(e, (rx.TimeoutError, socket.timeout)):
                self.suspect()
            raise NotConnectedError(cause=e, detail=f"{target[0]}:{target[1]}: {e}") from e
        if not role or _text(role[0]) != "master":
            conn.disconnect()
            self.suspect()
            raise NotConnectedError(detail=f"{target[0]}:{target[1]} is not a master (ROLE {_text(role[0]) if role else '?'})")
        conn._sock.settimeout(self._kwargs["socket_timeout"])
        return conn

    def close(self) -> None:
        with self._cond:
            self.closed = True
            conns = list(self._all)
            self._idle = []
            self._cond.notify_all()
        for c in conns:
            c.abort()
            c.disconnect()
        self._asker.shutdown(wait=False)
        for s in self._sentinels:
            s.connection_pool.disconnect()


def build_pipeline(conn: HAConnection) -> Pipeline:
    """A pipeline to queue commands on (never executed by redis-py: durable writes send its stack themselves)."""
    return Pipeline(conn.pinned, conn.client.response_callbacks, False, None)
