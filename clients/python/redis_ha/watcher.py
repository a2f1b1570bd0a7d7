"""+try-failover / +switch-master from every Sentinel (client/failoverWatcher.ts). Every Sentinel publishes its
own +switch-master, up to a second or more apart, and only the failover leader publishes some messages, so the
client listens to all of them and reacts to the earliest copy (FACTS.md, "Who says what")."""

from __future__ import annotations

import logging
import threading
from typing import Callable, List, Optional, Tuple

import redis

from .options import ClientOptions
from .redis_options import sentinel_connection_kwargs

log = logging.getLogger("redis_ha")

Address = Tuple[str, int]

#: Pause before re-subscribing to a Sentinel that went away (ioredis' detector waits 60 s by default).
RESUBSCRIBE_S = 1.0


def parse_switch_master(message: str, master_name: str) -> Optional[Tuple[Address, Address]]:
    """``<name> <old-ip> <old-port> <new-ip> <new-port>`` -> (old, new) for our master, else None."""
    p = message.split()
    if len(p) != 5 or p[0] != master_name:
        return None
    return (p[1], int(p[2])), (p[3], int(p[4]))


def parse_try_failover(message: str, master_name: str) -> Optional[Address]:
    """``master <name> <ip> <port>`` -> the master being failed over, for our master, else None."""
    p = message.split()
    if len(p) < 4 or p[0] != "master" or p[1] != master_name:
        return None
    return (p[2], int(p[3]))


class FailoverWatcher:
    def __init__(
        self,
        opts: ClientOptions,
        on_try_failover: Callable[[Address], None],
        on_switch: Callable[[Address, Address], None],
    ):
        self._opts = opts
        self._on_try = on_try_failover
        self._on_switch = on_switch
        self._stop = threading.Event()
        self._threads: List[threading.Thread] = []
        self.subscribed = 0
        self._lock = threading.Lock()
        for s in opts.sentinels:
            t = threading.Thread(target=self._run, args=(s.host, s.port), name=f"redis-ha-watch-{s.host}:{s.port}", daemon=True)
            t.start()
            self._threads.append(t)

    def _run(self, host: str, port: int) -> None:
        while not self._stop.is_set():
            # socket_timeout bounds the SUBSCRIBE handshake; get_message below only reads when data is there.
            r = redis.Redis(host=host, port=port, **sentinel_connection_kwargs(self._opts, self._opts.timeouts.sentinel_command_ms))
            p = r.pubsub(ignore_subscribe_messages=True)
            counted = False
            try:
                p.subscribe("+switch-master", "+try-failover")
                with self._lock:
                    self.subscribed += 1
                counted = True
                while not self._stop.is_set():
                    msg = p.get_message(timeout=0.5)
                    if msg is None or msg.get("type") != "message":
                        continue
                    self._handle(str(msg["channel"]), str(msg["data"]))
            except Exception as e:  # noqa: BLE001 - a Sentinel that went away: subscribe again later
                log.debug("Sentinel %s:%s subscription: %s", host, port, e)
            finally:
                if counted:
                    with self._lock:
                        self.subscribed -= 1
                try:
                    p.close()
                    r.connection_pool.disconnect()
                except Exception:  # noqa: BLE001
                    pass
            self._stop.wait(RESUBSCRIBE_S)

    def _handle(self, channel: str, data: str) -> None:
        name = self._opts.master_name
        if channel == "+switch-master":
            sw = parse_switch_master(data, name)
            if sw:
                self._on_switch(*sw)
        elif channel == "+try-failover":
            m = parse_try_failover(data, name)
            if m:
                self._on_try(m)

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)
