"""Tasks for the base class's abnormal ends (loaded with SITEOPS_TASK_MODULES).

Their "external system" is the remote Redis database of fixture_tasks, or the one named
by SITEOPS_TEST_REMOTE_URL: the broker-restart test restarts the worker's broker and
keeps the effects on a Redis that stays up.
"""

from __future__ import annotations

import os
import time

import redis
from celery.exceptions import SoftTimeLimitExceeded

from siteops.connectors.errors import RateLimited
from siteops.store import audit
from siteops.tasks.base import ParkUntil, SiteopsTask, siteops_task
from tests.integration.fixture_tasks import remote as default_remote


def remote() -> redis.Redis:
    url = os.environ.get("SITEOPS_TEST_REMOTE_URL")
    return redis.Redis.from_url(url, decode_responses=True) if url else default_remote()


@siteops_task("siteops.testing.mark", idempotent=True)
def mark(self: SiteopsTask, site: str, batch: str, n: int, hold: float = 0.05) -> None:
    """An idempotent effect: n joins the batch's set (a rerun adds nothing new)."""
    r = remote()
    r.sadd(f"running:{batch}", n)
    time.sleep(hold)  # the work itself
    r.sadd(f"done:{batch}", n)
    r.incr(f"runs:{batch}")


@siteops_task("siteops.testing.hang", idempotent=True, time_limit=2, soft_time_limit=1)
def hang(self: SiteopsTask, site: str, key: str) -> None:
    """Hangs past its hard time limit, deaf to the soft one (C code, a socket with no timeout)."""
    remote().rpush(f"started:{key}", os.getpid())
    try:
        time.sleep(60)
    except SoftTimeLimitExceeded:
        time.sleep(60)


@siteops_task("siteops.testing.wait_long", idempotent=True, business_key="key")
def wait_long(self: SiteopsTask, site: str, key: str, retry_after: float = 7200) -> int:
    """Told to come back in two hours by its first answer; fine the second time."""
    attempt = int(remote().incr(f"attempts:{key}"))
    if attempt == 1:
        raise RateLimited("429 Too Many Requests", retry_after=retry_after, system="sim", operation="call")
    return attempt


@siteops_task("siteops.testing.park_again", idempotent=True, business_key="key")
def park_again(self: SiteopsTask, site: str, key: str, parks: int = 3) -> int:
    """Finds the circuit open `parks` times (a park that spends no retry), then runs."""
    attempt = int(remote().incr(f"attempts:{key}"))
    if attempt <= parks:
        raise ParkUntil(after=0.1, reason="circuit_open")
    return attempt


@siteops_task("siteops.testing.store_touch", idempotent=True, business_key="key")
def store_touch(self: SiteopsTask, site: str, key: str) -> int:
    """Reads the store mid-task, after the test said go (and maybe took the store away)."""
    r = remote()
    attempt = int(r.incr(f"attempts:{key}"))
    deadline = time.monotonic() + 30
    while not r.exists(f"go:{key}") and time.monotonic() < deadline:
        time.sleep(0.05)  # the workload: a task that runs while the test breaks the store
    audit.count_dead_letters()
    r.rpush(f"effects:{key}", self.request.id)
    return attempt
