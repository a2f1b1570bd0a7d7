"""A real Redis 7 + Sentinel cluster on 127.0.0.1 for the tests (client/testing/loopbackCluster.ts in Python):
one master, two replicas, three Sentinels (quorum 2), passwords on Redis and on the Sentinels. Ports are picked by
the OS; a server that loses its port to another process before binding it (EADDRINUSE) makes the whole cluster
start over on fresh ports. Every process is tracked by pid and killed on close() (and at exit); nothing here
signals a process it did not start."""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Callable, Dict, List, Optional, Tuple

import redis

REDIS_SERVER = os.environ.get("REDIS_SERVER_BIN", "/usr/bin/redis-server")
REDIS_SENTINEL = os.environ.get("REDIS_SENTINEL_BIN", "/usr/bin/redis-sentinel")
HOST = "127.0.0.1"
MASTER_NAME = "mymaster"

Address = Tuple[str, int]
_live: Dict[int, subprocess.Popen] = {}


@atexit.register
def _kill_leftovers() -> None:
    for p in list(_live.values()):
        try:
            p.send_signal(signal.SIGCONT)
            p.kill()
        except OSError:
            pass


def missing_servers() -> Optional[str]:
    for b in (REDIS_SERVER, REDIS_SENTINEL):
        if not os.access(b, os.X_OK):
            return f"{b} is not installed (apt-get install redis-server redis-sentinel, or set REDIS_SERVER_BIN / REDIS_SENTINEL_BIN)"
    return None


class PortTaken(Exception):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for(what: str, fn: Callable[[], bool], timeout_s: float = 10.0, every_s: float = 0.05) -> None:
    end = time.monotonic() + timeout_s
    last: Optional[BaseException] = None
    while time.monotonic() < end:
        try:
            if fn():
                return
        except PortTaken:
            raise
        except Exception as e:  # noqa: BLE001
            last = e
        time.sleep(every_s)
    raise TimeoutError(f"timed out waiting for {what}" + (f" (last error: {last})" if last else ""))


class LoopbackCluster:
    def __init__(self, down_after_ms: int = 2000, failover_timeout_ms: int = 5000, wait_streaming: bool = True):
        self.down_after_ms = down_after_ms
        self.wait_streaming = wait_streaming
        for attempt in range(5):
            try:
                self._start(failover_timeout_ms)
                return
            except PortTaken:
                self.close()
                if attempt == 4:
                    raise

    def _start(self, failover_timeout_ms: int) -> None:
        self.dir = tempfile.mkdtemp(prefix="redis-ha-py-")
        self.password = "redis-pass-" + secrets.token_hex(4)
        self.sentinel_password = "sentinel-pass-" + secrets.token_hex(4)
        ports: List[int] = []
        while len(ports) < 6:
            p = _free_port()
            if p not in ports:
                ports.append(p)
        self.nodes: List[Address] = [(HOST, p) for p in ports[:3]]
        self.sentinels: List[Address] = [(HOST, p) for p in ports[3:]]
        self.procs: Dict[Tuple[str, Address], subprocess.Popen] = {}
        self.configs: Dict[Tuple[str, Address], str] = {}
        master = self.nodes[0]
        for n in self.nodes:
            d = os.path.join(self.dir, f"redis-{n[1]}")
            os.mkdir(d)
            lines = [
                f"bind {HOST}", f"port {n[1]}", "daemonize no", f"dir {d}", f"logfile {d}/redis.log",
                # No persistence: a restarted node comes back empty; durability must come from replication.
                'save ""', "appendonly no", f"requirepass {self.password}", f"masterauth {self.password}",
                "repl-diskless-sync yes", "repl-diskless-sync-delay 0",
            ] + ([] if n == master else [f"replicaof {master[0]} {master[1]}"])
            self._write(("redis", n), d, "redis.conf", lines)
        ids = {s: secrets.token_hex(20) for s in self.sentinels}
        for s in self.sentinels:
            d = os.path.join(self.dir, f"sentinel-{s[1]}")
            os.mkdir(d)
            lines = [
                f"bind {HOST}", f"port {s[1]}", "daemonize no", f"dir {d}", f"logfile {d}/sentinel.log",
                f"requirepass {self.sentinel_password}", f"sentinel sentinel-pass {self.sentinel_password}",
                f"sentinel monitor {MASTER_NAME} {master[0]} {master[1]} 2",
                f"sentinel auth-pass {MASTER_NAME} {self.password}",
                f"sentinel down-after-milliseconds {MASTER_NAME} {self.down_after_ms}",
                f"sentinel failover-timeout {MASTER_NAME} {failover_timeout_ms}",
                f"sentinel parallel-syncs {MASTER_NAME} 1",
                # Known from the start (Sentinel would learn them from INFO every 10 s and from hello messages every
                # 2 s): the cluster is healthy about 10 s sooner, which keeps the suite short.
                f"sentinel myid {ids[s]}",
            ] + [f"sentinel known-replica {MASTER_NAME} {n[0]} {n[1]}" for n in self.nodes if n != master] + [
                f"sentinel known-sentinel {MASTER_NAME} {o[0]} {o[1]} {ids[o]}" for o in self.sentinels if o != s
            ]
            self._write(("sentinel", s), d, "sentinel.conf", lines)
        for key in self.configs:
            self._spawn(key)
        for key in self.configs:
            self._wait_ping(key)
        self.wait_healthy()

    def _write(self, key: Tuple[str, Address], d: str, name: str, lines: List[str]) -> None:
        path = os.path.join(d, name)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.configs[key] = path

    def _spawn(self, key: Tuple[str, Address]) -> None:
        binary = REDIS_SERVER if key[0] == "redis" else REDIS_SENTINEL
        p = subprocess.Popen([binary, self.configs[key]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs[key] = p
        _live[p.pid] = p

    def _conn(self, key: Tuple[str, Address], timeout: float = 0.5) -> redis.Redis:
        pw = self.password if key[0] == "redis" else self.sentinel_password
        return redis.Redis(host=key[1][0], port=key[1][1], password=pw, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True)

    def _wait_ping(self, key: Tuple[str, Address]) -> None:
        def ping() -> bool:
            p = self.procs[key]
            if p.poll() is not None:
                log = open(os.path.join(os.path.dirname(self.configs[key]), f"{key[0]}.log")).read()
                if "Address already in use" in log:
                    raise PortTaken(str(key))
                raise RuntimeError(f"{key} exited: {log[-300:]}")
            r = self._conn(key)
            try:
                return bool(r.ping())
            finally:
                r.connection_pool.disconnect()

        wait_for(f"{key} to answer PING", ping)

    # -- queries ---------------------------------------------------------------------------------------
    def sentinel(self, s: Address) -> redis.Redis:
        return self._conn(("sentinel", s))

    def node(self, n: Address) -> redis.Redis:
        return self._conn(("redis", n))

    def master_by_sentinels(self) -> Optional[Address]:
        """The master a majority of reachable Sentinels names."""
        seen: Dict[Address, int] = {}
        for s in self.sentinels:
            if self.procs[("sentinel", s)].poll() is not None:
                continue
            r = self.sentinel(s)
            try:
                a = r.execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
                seen[(a[0], int(a[1]))] = seen.get((a[0], int(a[1])), 0) + 1
            except Exception:  # noqa: BLE001
                pass
            finally:
                r.connection_pool.disconnect()
        return max(seen, key=lambda a: seen[a]) if seen else None

    def wait_healthy(self, timeout_s: float = 20.0) -> None:
        """Every Sentinel names the same master, sees 2 replicas and 2 other Sentinels; the master has 2 online replicas."""

        def ok() -> bool:
            masters = set()
            for s in self.sentinels:
                r = self.sentinel(s)
                try:
                    info = r.sentinel_master(MASTER_NAME)  # redis-py parses the reply into a dict
                    if info.get("is_sdown") or info.get("is_odown"):
                        return False
                    if int(info["num-slaves"]) < 2 or int(info["num-other-sentinels"]) < 2:
                        return False
                    masters.add((info["ip"], int(info["port"])))
                finally:
                    r.connection_pool.disconnect()
            if len(masters) != 1:
                return False
            m = self.node(masters.pop())
            try:
                info = m.info("replication")
                online = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online"]
                if info["role"] != "master" or len(online) != 2:
                    return False
                # "online" is not enough: after a diskless full sync the master streams nothing to a replica until
                # its first REPLCONF ACK (up to 1 s later), and Sentinel may promote such a replica (seen here: a
                # SENTINEL FAILOVER right after start promoted a replica at offset 0, and every write acknowledged
                # by the other replica was lost). Both replicas must have acknowledged a write.
                if not self.wait_streaming:
                    return True
                return bool(m.execute_command("SET", "cluster:ready", "1")) and int(m.execute_command("WAIT", 2, 1000)) == 2
            finally:
                m.connection_pool.disconnect()

        wait_for("a healthy cluster (1 master, 2 online replicas, 3 Sentinels that know each other)", ok, timeout_s, 0.1)

    # -- faults ----------------------------------------------------------------------------------------
    def kill(self, n: Address) -> None:
        p = self.procs[("redis", n)]
        p.send_signal(signal.SIGCONT)
        p.kill()
        p.wait()
        _live.pop(p.pid, None)

    def restart(self, n: Address) -> None:
        self.kill(n)
        self._spawn(("redis", n))
        self._wait_ping(("redis", n))

    def pause(self, n: Address) -> None:
        self.procs[("redis", n)].send_signal(signal.SIGSTOP)

    def resume(self, n: Address) -> None:
        self.procs[("redis", n)].send_signal(signal.SIGCONT)

    def kill_sentinel(self, s: Address) -> None:
        p = self.procs[("sentinel", s)]
        p.kill()
        p.wait()
        _live.pop(p.pid, None)

    def restart_sentinel(self, s: Address) -> None:
        self._spawn(("sentinel", s))
        self._wait_ping(("sentinel", s))

    def close(self) -> None:
        for p in getattr(self, "procs", {}).values():
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGCONT)
                    p.kill()
                except OSError:
                    pass
                p.wait()
            _live.pop(p.pid, None)
        if getattr(self, "dir", None):
            shutil.rmtree(self.dir, ignore_errors=True)
