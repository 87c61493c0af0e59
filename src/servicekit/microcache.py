"""A tiny per-process cache for public responses that many clients ask for at once.

During an on-sale every client polls the same page of events; answering it from memory
for a second costs nothing in freshness a person could notice and turns thousands of
identical queries into one per process and second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class MicroCache:
    def __init__(self, *, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic):
        self._entries: dict[str, tuple[float, bytes]] = {}
        self._max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if expires_at <= self._clock():
            with self._lock:
                self._entries.pop(key, None)
            return None
        return value

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        if ttl_seconds <= 0:
            return
        with self._lock:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()  # bounded; refilled within a second
            self._entries[key] = (self._clock() + ttl_seconds, value)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
