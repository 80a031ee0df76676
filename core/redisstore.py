"""The Redis that every process and host shares (`REDIS_URL`), for counters that should not cost a
database write each (sign-in limits). Without `REDIS_URL`, or for `REDIS_RETRY_SECONDS` after it
failed to answer, `shared()` gives None and callers use the database (docs/operations.md "Redis").
Keys start with `REDIS_PREFIX`, so that two installations can share one Redis.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from flask import Flask, current_app

log = logging.getLogger(__name__)

EXTENSION = "moralcredit.redis"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A sign-in waits at most this long for Redis before it falls back to the database.
TIMEOUT_SECONDS = 0.5

Error = redis.RedisError


def micros(moment: datetime | None) -> int:
    """`moment` as whole microseconds since 1970 (0 for None): exact, unlike float timestamps."""
    return 0 if moment is None else (moment - EPOCH) // timedelta(microseconds=1)


def from_micros(value: int) -> datetime | None:
    return None if not value else EPOCH + timedelta(microseconds=int(value))


class SharedRedis:
    """One installation's view of a Redis: a client, its key prefix and whether it was just down."""

    def __init__(self, url: str, prefix: str, retry_seconds: int) -> None:
        self.url, self.prefix, self.retry_seconds = url, prefix, retry_seconds
        self.client = redis.Redis.from_url(
            url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS, retry_on_timeout=False
        )
        self._down_until = 0.0
        self._scripts: dict[str, Any] = {}

    def key(self, *parts: str | int) -> str:
        return self.prefix + ":".join(str(p) for p in parts)

    def script(self, source: str) -> Any:
        """A Lua script run atomically by Redis (EVALSHA, loaded on first use)."""
        if source not in self._scripts:
            self._scripts[source] = self.client.register_script(source)
        return self._scripts[source]

    @property
    def up(self) -> bool:
        return time.monotonic() >= self._down_until

    def failed(self, exc: Exception) -> None:
        """Redis did not answer: callers use the database for the next `retry_seconds`."""
        self._down_until = time.monotonic() + self.retry_seconds
        log.error("Redis at %s failed (%s): the database serves for %ss", self.url, exc, self.retry_seconds)


def store(app: Flask | None = None) -> SharedRedis | None:
    """The app's Redis when `REDIS_URL` is set, whether up or not; else None."""
    app = app or current_app
    url = app.config.get("REDIS_URL")
    if not url:
        return None
    prefix, retry = app.config["REDIS_PREFIX"], app.config["REDIS_RETRY_SECONDS"]
    found = app.extensions.get(EXTENSION)
    if found is None or (found.url, found.prefix, found.retry_seconds) != (url, prefix, retry):
        found = app.extensions[EXTENSION] = SharedRedis(url, prefix, retry)
    return found


def shared(app: Flask | None = None) -> SharedRedis | None:
    """The app's Redis to use now: None without `REDIS_URL` or while it is marked down."""
    found = store(app)
    return found if found is not None and found.up else None
