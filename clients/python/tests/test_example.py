"""example.py as a process, against a loopback cluster described by a connection document (the lab's format)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import unittest
import urllib.error
import urllib.request

from .cluster import LoopbackCluster, wait_for
from .servers import require_servers

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "example.py")


def call(method: str, url: str) -> "tuple[int, bytes]":
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class ExampleTest(unittest.TestCase):
    def test_counter_health_metrics(self) -> None:
        require_servers(self)
        c = LoopbackCluster()
        self.addCleanup(c.close)
        doc = {
            "stack": "loopback",
            "masterName": "mymaster",
            "sentinels": [{"host": h, "port": p} for h, p in c.sentinels],
            "nodes": [{"name": f"n{i}", "region": "local", "host": h, "redisPort": p} for i, (h, p) in enumerate(c.nodes)],
            "redisPassword": c.password,
            "sentinelPassword": c.sentinel_password,
        }
        fd, path = tempfile.mkstemp(suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f)
        self.addCleanup(os.unlink, path)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen(
            [sys.executable, EXAMPLE],
            env={**os.environ, "REDIS_HA_DOCUMENT": path, "PORT": str(port), "REDIS_REGION": "local"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.addCleanup(lambda: (proc.kill(), proc.wait(), proc.stderr.close()))  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        wait_for("example.py to listen", lambda: call("GET", base + "/health")[0] == 200, 10, 0.1)
        self.assertEqual(json.loads(call("POST", base + "/counter")[1]), {"value": 1, "acknowledged": 2})  # every attached replica
        self.assertEqual(json.loads(call("POST", base + "/counter")[1])["value"], 2)
        self.assertEqual(json.loads(call("GET", base + "/counter")[1]), {"value": 2, "stale": False})
        status, metrics = call("GET", base + "/metrics")
        self.assertEqual(status, 200)
        self.assertIn(b'redis_client_commands_total{op="durable_write",outcome="success"} 2.0', metrics)


if __name__ == "__main__":
    unittest.main()
