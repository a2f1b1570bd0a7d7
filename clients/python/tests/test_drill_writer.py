"""drill_writer.py, the lab drill's Python writer, against a loopback cluster: its protocol (document in, acks
out, stop on EOF) and that every write it reports acknowledged is on the master."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import unittest

from .cluster import LoopbackCluster
from .servers import require_servers

WRITER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "drill_writer.py")


class DrillWriterTest(unittest.TestCase):
    def test_protocol(self) -> None:
        require_servers(self)
        c = LoopbackCluster()
        self.addCleanup(c.close)
        doc = {
            "masterName": "mymaster",
            "sentinels": [{"host": h, "port": p, "region": "here"} for h, p in c.sentinels],
            "redisPassword": c.password,
            "sentinelPassword": c.sentinel_password,
        }
        p = subprocess.Popen(
            [sys.executable, WRITER, "--prefix", "drill:t", "--region", "here"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert p.stdin is not None and p.stdout is not None
        p.stdin.write(json.dumps(doc) + "\n")
        p.stdin.flush()
        first = p.stdout.readline()
        time.sleep(0.5)
        p.stdin.close()
        lines = [json.loads(x) for x in [first, *p.stdout]]
        self.assertEqual(p.wait(timeout=10), 0)
        self.assertEqual(lines[-1], {"done": True})
        acks = [x["ack"] for x in lines if "ack" in x]
        self.assertGreater(len(acks), 50)
        self.assertEqual(acks[:2], ["drill:t:0", "drill:t:1"])
        r = c.node(c.nodes[0])
        try:
            self.assertEqual(r.mget(acks), acks)
        finally:
            r.connection_pool.disconnect()


if __name__ == "__main__":
    unittest.main()
