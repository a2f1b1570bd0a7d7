"""health(): the master connection (address, ROLE, PING latency), every Sentinel (reachable n of m, the master it
names), breaker state and the last failover; 503 when no master is reachable or the breaker is open. Probes
bypass the call policies (no retries, no breaker). The handlers are framework-agnostic: ``health_response``
returns (status, headers, body); ``wsgi_app`` and ``asgi_app`` adapt it."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Dict, Iterable, List, Tuple

import redis

from .redis_options import sentinel_connection_kwargs

if TYPE_CHECKING:
    from .client import SentinelClient

Headers = List[Tuple[str, str]]


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 2)


def probe_sentinel(client: "SentinelClient", host: str, port: int, region: Any) -> Dict[str, Any]:
    opts = client.options
    r = redis.Redis(host=host, port=port, **sentinel_connection_kwargs(opts, opts.timeouts.health_ms))
    out: Dict[str, Any] = {"address": f"{host}:{port}", "region": region}
    try:
        started = time.monotonic()
        r.ping()
        out["pingMs"] = _ms(started)
        reply = r.execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", opts.master_name)
        out.update(reachable=True, master=f"{reply[0]}:{reply[1]}" if reply else None)
    except Exception as e:  # noqa: BLE001
        out.update(reachable=False, error=str(e))
    finally:
        r.connection_pool.disconnect()
    return out


def collect_health(client: "SentinelClient") -> Dict[str, Any]:
    opts = client.options
    with ThreadPoolExecutor(max_workers=max(1, len(opts.sentinels))) as ex:
        futures = [ex.submit(probe_sentinel, client, s.host, s.port, s.region) for s in opts.sentinels]
        role, ping_ms, error = client._probe_master()
        nodes = [f.result() for f in futures]
    breaker = client.breaker_state
    ok = role == "master" and ping_ms is not None and breaker != "open"
    f = client.last_failover
    report: Dict[str, Any] = {
        "status": "ok" if ok else "down",
        "httpStatus": 200 if ok else 503,
        "masterName": opts.master_name,
        "region": opts.region,
        "master": {
            "address": client.master_address,
            "role": role,
            "pingMs": ping_ms,
            "epoch": client.connection_epoch,
            **({"error": error} if error else {}),
        },
        "sentinels": {"reachable": sum(1 for n in nodes if n.get("reachable")), "total": len(nodes), "nodes": nodes},
        "breaker": breaker,
        "lastFailover": f,
        "checkedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return report


def health_response(health: Callable[[], Dict[str, Any]]) -> Tuple[int, Headers, bytes]:
    """(status, headers, JSON body) of the health report; 503 with the error when collecting it failed."""
    try:
        report = health()
        status = int(report["httpStatus"])
    except Exception as e:  # noqa: BLE001
        report, status = {"status": "down", "httpStatus": 503, "error": str(e)}, 503
    body = json.dumps(report).encode()
    return status, [("content-type", "application/json"), ("cache-control", "no-store"), ("content-length", str(len(body)))], body


_REASONS = {200: "200 OK", 503: "503 Service Unavailable"}


def wsgi_app(health: Callable[[], Dict[str, Any]]) -> Callable[[Dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """A WSGI application answering every request with the health report (mount it on the path you choose)."""

    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        status, headers, body = health_response(health)
        start_response(_REASONS.get(status, str(status)), headers)
        return [body]

    return app


def asgi_app(health: Callable[[], Dict[str, Any]]) -> Callable[..., Awaitable[None]]:
    """An ASGI (3.0, http scope) application answering with the health report; probes run in a worker thread."""
    import asyncio

    async def app(scope: Dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope.get("type") != "http":
            return
        loop = asyncio.get_running_loop()
        status, headers, body = await loop.run_in_executor(None, health_response, health)
        await send({"type": "http.response.start", "status": status, "headers": [(k.encode(), v.encode()) for k, v in headers]})
        await send({"type": "http.response.body", "body": body})

    return app
