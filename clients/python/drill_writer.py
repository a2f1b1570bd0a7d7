#!/usr/bin/env python3
"""The lab drill's writer through the Python client (`npm run lab -- drill --writer python`): numbered durable
writes (`SET <prefix>:<n> <prefix>:<n>` + WAIT, one at a time, not declared idempotent), as the TypeScript
writer does (client/testing/durableWrites.ts).

Protocol (lab/pythonWriter.ts speaks it): the connection document (one JSON line, the format of README.md) on
stdin; stdin closing means "stop after the current write". Every acknowledged write prints
``{"ack": key, "at": <epoch ms>}`` on stdout, every error that reached the writer ``{"error": name}`` (the
exception's class, ``:READONLY`` appended when it is a READONLY reply), and the end ``{"done": true}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from redis_ha import SentinelClient, options_from_document  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--region", default=None, help="own region: its Sentinels are asked first")
    ap.add_argument("--replicas", type=int, default=1)
    ap.add_argument("--timeout-ms", type=int, default=200)
    ap.add_argument("--pause-ms", type=float, default=2, help="pause after an error")
    a = ap.parse_args()
    document = sys.stdin.readline()
    client = SentinelClient(options_from_document(document, region=a.region, stale_cache=False, connection_name="redis-ha-drill-py"))
    stop = threading.Event()
    out_lock = threading.Lock()

    def emit(obj: object) -> None:
        with out_lock:
            sys.stdout.write(json.dumps(obj) + "\n")
            sys.stdout.flush()

    def wait_for_eof() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    n = 0
    try:
        while not stop.is_set():
            key = f"{a.prefix}:{n}"
            n += 1
            try:
                r = client.durable_write(lambda p, k=key: p.set(k, k), replicas=a.replicas, timeout_ms=a.timeout_ms)
                if r.acknowledged >= a.replicas:
                    emit({"ack": key, "at": int(time.time() * 1000)})
            except Exception as e:  # noqa: BLE001 - every error is reported to the drill by name
                emit({"error": type(e).__name__ + (":READONLY" if "READONLY" in str(e) or "read only replica" in str(e) else "")})
                stop.wait(a.pause_ms / 1000)
    finally:
        client.close()
        emit({"done": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
