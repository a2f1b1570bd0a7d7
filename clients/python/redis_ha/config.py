"""The connection document: what `pulumi stack output --json --show-secrets` and `npm run lab -- up --json`
print, read into ClientOptions. One format, documented in README.md ("The connection document"):

    {
      "masterName": "mymaster",
      "sentinels": [{"host": "192.0.2.10", "port": 26379, "region": "eu-central"}, ...],
      "redisPassword": "...", "sentinelPassword": "...",
      "nodes": {"redis-eu-1": {"address": "192.0.2.10", "region": "eu-central"}, ...}   # stack outputs
            | [{"name": "redis-eu-1", "host": "10.77.0.2", "region": "eu-central"}, ...] # lab up --json
      "durability": {"replicas": 2}                                                    # optional
    }

``sentinels[].region`` is optional: when absent (the lab's document) it is taken from the node with the same
address. ``durability.replicas`` (the region-safe WAIT level, once the stack publishes it) becomes the default
``replicas`` of durable_write. Other keys (connectionSnippet, hostKeys, sshKey, ...) are ignored.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Dict, List, Mapping, Optional, Union

from .errors import InvalidOptionsError, OptionProblem
from .options import DEFAULT_SENTINEL_PORT, ClientOptions, SentinelEndpoint, ServerAuth


def _node_regions(nodes: Any) -> Dict[str, str]:
    out: Dict[str, str] = {}
    items: List[Any] = list(nodes.values()) if isinstance(nodes, Mapping) else list(nodes or [])
    for n in items:
        if not isinstance(n, Mapping):
            continue
        host = n.get("address", n.get("host"))
        if isinstance(host, str) and isinstance(n.get("region"), str):
            out[host] = n["region"]
    return out


def options_from_document(doc: Union[str, bytes, Mapping[str, Any]], **overrides: Any) -> ClientOptions:
    """ClientOptions from a connection document (a dict, or its JSON text). ``overrides`` are ClientOptions fields
    (``region``, ``metrics``, ``timeouts``...). Every problem of the document is reported at once."""
    if isinstance(doc, (str, bytes)):
        try:
            doc = json.loads(doc)
        except ValueError as e:
            raise InvalidOptionsError([OptionProblem("document", f"is not JSON ({e}); pass the output of `pulumi stack output --json --show-secrets` or `npm run lab -- up --json`")])
    if not isinstance(doc, Mapping):
        raise InvalidOptionsError([OptionProblem("document", f"must be a JSON object, got {type(doc).__name__}")])
    problems: List[OptionProblem] = []
    regions = _node_regions(doc.get("nodes"))
    sentinels: List[SentinelEndpoint] = []
    raw = doc.get("sentinels")
    if not isinstance(raw, list) or not raw:
        problems.append(OptionProblem("document.sentinels", "must be a non-empty list of {host, port, region?} (stack output \"sentinels\")"))
        raw = []
    for i, s in enumerate(raw):
        if not isinstance(s, Mapping) or not isinstance(s.get("host"), str):
            problems.append(OptionProblem(f"document.sentinels[{i}]", f"must be an object {{host, port, region?}}, got {s!r}"))
            continue
        region = s.get("region") if isinstance(s.get("region"), str) else regions.get(s["host"])
        sentinels.append(SentinelEndpoint(host=s["host"], port=s.get("port", DEFAULT_SENTINEL_PORT), region=region))
    master = doc.get("masterName")
    if not isinstance(master, str):
        problems.append(OptionProblem("document.masterName", f"must be the monitored master's name, got {master!r}"))
    for key in ("redisPassword", "sentinelPassword", "redisUsername", "sentinelUsername", "caCertificate"):
        v = doc.get(key)
        if v is not None and not isinstance(v, str):
            problems.append(OptionProblem(f"document.{key}", f"must be a string (stack outputs need --show-secrets), got {v!r}"))
    replicas: Optional[int] = None
    durability = doc.get("durability")
    if durability is not None:
        r = durability.get("replicas") if isinstance(durability, Mapping) else None
        if isinstance(r, bool) or not isinstance(r, int) or r < 1:
            problems.append(OptionProblem("document.durability.replicas", f"must be an integer >= 1, got {r!r}"))
        else:
            replicas = r
    if problems:
        raise InvalidOptionsError(problems)
    # tls: the cluster's CA (stack output caCertificate) verifies every node's certificate; redis-py picks its
    # SSL connection classes (Sentinel-managed included) from ssl=True.
    ca = doc.get("caCertificate")
    ssl = {"ssl": True, "ssl_ca_data": ca, "ssl_cert_reqs": "required"} if ca else None
    opts = ClientOptions(
        sentinels=tuple(sentinels),
        master_name=str(master),
        redis=ServerAuth(username=doc.get("redisUsername"), password=doc.get("redisPassword"), ssl=ssl),
        sentinel=ServerAuth(username=doc.get("sentinelUsername"), password=doc.get("sentinelPassword"), ssl=ssl),
        **({"durable_replicas": replicas} if replicas is not None else {}),
    )
    return replace(opts, **overrides)


def options_from_file(path: str, **overrides: Any) -> ClientOptions:
    """options_from_document of a file, e.g. the saved output of `npm run lab -- up --json > lab.json`."""
    with open(path, "rb") as f:
        return options_from_document(f.read(), **overrides)
