"""Bounded LRU + TTL holding the last value read per key, served (marked stale) only while Redis is
unavailable. Mirrors client/staleCache.ts."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Generic, Optional, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class ReadResult(Generic[T]):
    """A value fresh from Redis (``stale`` False) or from the stale cache (``stale`` True, ``age_ms`` old)."""

    value: T
    stale: bool
    age_ms: Optional[float] = None


class StaleCache:
    def __init__(self, max_entries: int, ttl_ms: float, now: Callable[[], float] = time.monotonic):
        if not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"StaleCache max_entries must be an integer >= 1, got {max_entries!r}")
        if not ttl_ms > 0:
            raise ValueError(f"StaleCache ttl_ms must be > 0, got {ttl_ms!r}")
        self.max_entries = max_entries
        self.ttl_ms = ttl_ms
        self._now = now
        self._entries: "OrderedDict[str, tuple[Any, float]]" = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def set(self, key: str, value: Any) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = (value, self._now())
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def get(self, key: str) -> "Optional[tuple[Any, float]]":
        """(value, age_ms), or None when absent or older than the TTL."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            age_ms = (self._now() - entry[1]) * 1000
            if age_ms > self.ttl_ms:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[0], age_ms

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
