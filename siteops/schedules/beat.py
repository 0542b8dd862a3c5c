"""The beat scheduler: RedBeat (schedule and leader lock in Redis) plus a tick timestamp.

Two beats may run (a standby for high availability): only the one holding the lock
`siteops:redbeat::lock` schedules; the other waits for the lock, which expires
`BEAT_LOCK_TIMEOUT` seconds after the leader's last tick. Last-run times live in Redis,
so the new leader continues the schedule instead of firing every entry again.

The exporter turns the tick timestamp into `siteops_beat_last_tick_timestamp_seconds`, so
an operator sees a beat that stopped ticking before the scans it drives go stale.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from redbeat import RedBeatScheduler

log = logging.getLogger(__name__)
BEAT_TICK_KEY = "siteops:beat:last_tick"
BEAT_KEY_PREFIX = "siteops:redbeat"
#: A dead leader's lock expires after this; the standby takes over then (< 60 s).
BEAT_LOCK_TIMEOUT = 15
#: The leader ticks (and renews its lock) at least this often.
BEAT_MAX_INTERVAL = 5


class SiteopsScheduler(RedBeatScheduler):  # type: ignore[misc]
    _client: redis.Redis | None = None
    _last_write = 0.0

    def tick(self, *args: Any, **kwargs: Any) -> float:
        try:
            interval: float = super().tick(*args, **kwargs)
        except redis.exceptions.LockNotOwnedError:
            # This beat stalled past BEAT_LOCK_TIMEOUT (a loaded host, swap, a SIGSTOP) and its
            # lock expired; a standby may lead now. Scheduling on would fire entries twice,
            # and RedBeat's own answer (the exception) kills the beat, which leaves no standby
            # where there was one. Wait for the lock as at start-up; the last-run times are in
            # Redis, so whoever led meanwhile is continued, not repeated.
            log.warning("beat: lost the leader lock (stalled for more than %ss); waiting to lead again",
                        BEAT_LOCK_TIMEOUT)
            self.lock.acquire()
            log.info("beat: Acquired lock")
            return 0.0
        now = time.time()
        if now - self._last_write >= 1.0:
            try:
                if self._client is None:
                    self._client = redis.Redis.from_url(self.app.conf.broker_url, socket_timeout=2)
                self._client.set(BEAT_TICK_KEY, now)
                self._last_write = now
            except redis.RedisError as exc:
                log.warning("beat tick not recorded: %s", exc)
        return min(interval, float(BEAT_MAX_INTERVAL))
