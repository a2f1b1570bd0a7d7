"""redis-py 4.3.4 keyword arguments of every connection this package opens, each non-default value with its
reason. Read against /usr/lib/python3/dist-packages/redis/{connection,client,sentinel,retry}.py (4.3.4).

Why not ``redis.sentinel.Sentinel.master_for``: its ``discover_master`` asks ``SENTINEL MASTERS`` of each
Sentinel and moves the one that answered to the front of the list (the application's own region is then no longer
asked first); it never checks the node's ROLE (a Sentinel answer that is already stale hands out a replica); and
its ``SentinelManagedConnection.read_response`` turns READONLY into ``ConnectionError("The previous master is now a
slave")``, which erases "refused before execution" (READONLY) into "connection lost in flight" (outcome unknown).
So discovery is our own (discovery.py) and connections are plain ``redis.Connection`` subclasses.
"""

from __future__ import annotations

import socket
from typing import Any, Dict

from redis.backoff import NoBackoff
from redis.retry import Retry

from .options import ClientOptions, ServerAuth


def _keepalive(ms: int) -> Dict[str, Any]:
    if ms <= 0:
        return {}
    secs = max(1, ms // 1000)
    opts: Dict[int, int] = {}
    for name, value in (("TCP_KEEPIDLE", secs), ("TCP_KEEPINTVL", secs), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):
            opts[getattr(socket, name)] = value
    # redis-py default: keep-alive off. A dead peer (host lost, NAT entry dropped) on an idle socket is then
    # found only when a command times out; keep-alive finds it on idle sockets too.
    return {"socket_keepalive": True, "socket_keepalive_options": opts}


def _ssl(auth: ServerAuth) -> Dict[str, Any]:
    return dict(auth.ssl) if auth.ssl else {}


def no_replay() -> Dict[str, Any]:
    """The retry settings that make redis-py send every command at most once."""
    return {
        # Default False, kept and written out: with True, Redis.execute_command and Pipeline.execute re-send a
        # command whose reply timed out (client.py `_disconnect_raise`, `_disconnect_raise_reset`), i.e. replay a
        # write that may already have run.
        "retry_on_timeout": False,
        # Default [] (redis-py: "retry_on_error is not set"): nothing is re-sent after a ConnectionError. Kept and
        # written out for the same reason; our policy re-sends only what provably did not run.
        "retry_on_error": [],
        # With retry_on_error empty redis-py builds Retry(NoBackoff(), 0) itself (connection.py __init__); given
        # explicitly so that `Connection.connect()` (which also goes through self.retry) makes one attempt: the
        # deadline, not redis-py, decides whether to try again, and each new attempt asks Sentinel afresh.
        "retry": Retry(NoBackoff(), 0),
    }


def master_connection_kwargs(opts: ClientOptions) -> Dict[str, Any]:
    t = opts.timeouts
    return {
        "username": opts.redis.username,
        "password": opts.redis.password,
        # Default None: no read timeout, so a command sent to a hung (SIGSTOPped) master waits forever (ioredis'
        # default measured 30 s of stalled writes). Each send also lowers it to the call's remaining deadline
        # (connection.HAConnection.send_packed_command).
        "socket_timeout": t.command_ms / 1000,
        # Default None = socket_timeout (connection.py: `socket_connect_timeout or socket_timeout`); explicit so a
        # dead host fails a connect within connect_ms.
        "socket_connect_timeout": t.connect_ms / 1000,
        # Default 0, kept: a health-check PING before a command would be one more round trip that, on a hung
        # master, blocks the call as long as the command itself would.
        "health_check_interval": 0,
        "client_name": opts.connection_name,
        "decode_responses": opts.decode_responses,
        **_keepalive(t.keep_alive_ms),
        **no_replay(),
        **_ssl(opts.redis),
    }


def sentinel_connection_kwargs(opts: ClientOptions, timeout_ms: int) -> Dict[str, Any]:
    return {
        "username": opts.sentinel.username,
        "password": opts.sentinel.password,
        # Default None: a hung Sentinel would stall master discovery for good.
        "socket_timeout": timeout_ms / 1000,
        "socket_connect_timeout": min(timeout_ms, opts.timeouts.connect_ms) / 1000,
        "decode_responses": True,
        **_keepalive(opts.timeouts.keep_alive_ms),
        **no_replay(),
        **_ssl(opts.sentinel),
    }
