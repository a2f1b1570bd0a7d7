#!/usr/bin/env python3
"""A tiny HTTP service on redis_ha, standard library only (mirrors examples/app.ts): a durable counter, a health
endpoint and a metrics endpoint.

    npm run -s lab -- up --stack dev --json > lab.json          # or: pulumi stack output --json --show-secrets > stack.json
    REDIS_HA_DOCUMENT=lab.json REDIS_REGION=eu-central /usr/bin/python3 clients/python/example.py

    curl -XPOST localhost:8080/counter   # INCR, acknowledged by >= 1 replica (WAIT), or an error
    curl localhost:8080/counter          # read; served stale (marked) while Redis is unreachable
    curl localhost:8080/health           # 200 / 503 JSON
    curl localhost:8080/metrics          # Prometheus text

Prints what the client sees during a failover (switches, breaker changes, stale reads).
"""

from __future__ import annotations

import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest  # noqa: E402

from redis_ha import MetricsOptions, RedisClientError, SentinelClient, WriteNotAcknowledgedError, options_from_file  # noqa: E402

COUNTER = "example:counter"
T0 = time.monotonic()


def log(*args: object) -> None:
    print(f"[{time.monotonic() - T0:.2f}s]", *args, flush=True)


def main() -> int:
    document = os.environ.get("REDIS_HA_DOCUMENT")
    if not document:
        print("REDIS_HA_DOCUMENT is required: the JSON of `pulumi stack output --json --show-secrets` or `npm run lab -- up --json`", file=sys.stderr)
        return 2
    registry = CollectorRegistry()
    client = SentinelClient(
        options_from_file(document, region=os.environ.get("REDIS_REGION"), metrics=MetricsOptions(registry=registry), connection_name="example-py")
    )
    client.on("failover", lambda e: log(f"failover ({e['source']}): master {e['from']} -> {e['to']}"))
    client.on("breaker_state_change", lambda s: log(f"circuit breaker {s}"))
    client.on("stale_served", lambda key, age_ms, cls: log(f"served stale {key} ({age_ms:.0f} ms old, {cls})"))

    class Handler(BaseHTTPRequestHandler):
        def send(self, status: int, body: object, content_type: str = "application/json") -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path = self.path.split("?")[0]
            if path == "/health":
                status, headers, body = client.health_response()
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)
            elif path == "/metrics":
                self.send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/counter":
                try:
                    r = client.read_through(COUNTER, lambda redis: redis.get(COUNTER))
                    out = {"value": int(r.value or 0), "stale": r.stale}
                    if r.stale:
                        out["ageMs"] = round(r.age_ms or 0)
                    self.send(200, out)
                except Exception as e:  # noqa: BLE001
                    self.send(503, {"error": type(e).__name__, "message": str(e)})
            else:
                self.send(404, {"error": "not found", "routes": ["POST /counter", "GET /counter", "GET /health", "GET /metrics"]})

        def do_POST(self) -> None:  # noqa: N802
            if self.path.split("?")[0] != "/counter":
                self.send(404, {"error": "not found"})
                return
            try:
                # INCR is not idempotent: never re-sent when its outcome is unknown.
                res = client.durable_write(lambda p: p.incr(COUNTER), replicas=1, timeout_ms=200)
                self.send(200, {"value": res.results[0], "acknowledged": res.acknowledged})
            except Exception as e:  # noqa: BLE001
                outcome = e.outcome if isinstance(e, RedisClientError) else "unknown"
                self.send(504 if isinstance(e, WriteNotAcknowledgedError) else 503, {"error": type(e).__name__, "message": str(e), "outcome": outcome})

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8080"))
    server = ThreadingHTTPServer((host, port), Handler)
    log(f"listening on http://{host}:{port}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
