"""A tiny per-process cache for small, rarely edited configuration tables.

Ingest reads the channel account and the window policy on every post; they change a
few times a year. Each process keeps them for `ttl` seconds, so an edit in the admin
reaches every web process within that time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class TTLValue(Generic[T]):
    def __init__(self, load: Callable[[], T], *, ttl: float):
        self._load = load
        self._ttl = ttl
        self._lock = threading.Lock()
        self._value: T | None = None
        self._expires = 0.0

    def get(self) -> T:
        now = time.monotonic()
        if self._value is None or now >= self._expires:
            with self._lock:
                if self._value is None or now >= self._expires:
                    self._value = self._load()
                    self._expires = now + self._ttl
        return self._value

    def clear(self) -> None:
        with self._lock:
            self._value = None
