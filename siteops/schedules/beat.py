"""The beat scheduler: Celery's persistent scheduler, plus a tick timestamp in Redis.

The exporter turns the timestamp into `siteops_beat_last_tick_timestamp_seconds`, so an
operator sees a beat that stopped ticking before the scans it drives go stale.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from celery.beat import PersistentScheduler

log = logging.getLogger(__name__)
BEAT_TICK_KEY = "siteops:beat:last_tick"


class SiteopsScheduler(PersistentScheduler):  # type: ignore[misc]
    _client: redis.Redis | None = None
    _last_write = 0.0

    def tick(self, *args: Any, **kwargs: Any) -> float:
        interval: float = super().tick(*args, **kwargs)
        now = time.time()
        if now - self._last_write >= 1.0:
            try:
                if self._client is None:
                    self._client = redis.Redis.from_url(self.app.conf.broker_url, socket_timeout=2)
                self._client.set(BEAT_TICK_KEY, now)
                self._last_write = now
            except redis.RedisError as exc:
                log.warning("beat tick not recorded: %s", exc)
        # Wake at least every 5 s so the tick timestamp stays fresh between due entries.
        return min(interval, 5.0)
