"""Tasks that exercise the base class against real workers (loaded with SITEOPS_TASK_MODULES).

Their "external system" is a Redis database of the test's private server: a side effect
is an RPUSH there, so the test can count how often it really happened.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis

from siteops.connectors.errors import PermanentError, RateLimited, RetryableError
from siteops.tasks.base import SiteopsTask, siteops_task
from siteops.worker.housekeeping import housekeeping_job


def remote() -> redis.Redis:
    url = os.environ["SITEOPS_BROKER_URL"].rsplit("/", 1)[0] + "/3"
    return redis.Redis.from_url(url, decode_responses=True)


@siteops_task("siteops.testing.flaky", idempotent=True, business_key="key")
def flaky(self: SiteopsTask, site: str, key: str, fail_times: int, rate_limited: bool = False) -> dict[str, Any]:
    """Fails `fail_times` times with a retryable error, then succeeds."""
    r = remote()
    attempt = r.incr(f"attempts:{key}")
    r.rpush(f"attempt_times:{key}", time.time())
    if attempt <= fail_times:
        if rate_limited:
            raise RateLimited("slow down", retry_after=0.5, system="sim", operation="call")
        raise RetryableError(f"attempt {attempt}: remote unavailable", system="sim", operation="call")
    return {"attempts": attempt, "worker": self.request.hostname}


@siteops_task("siteops.testing.needs_fix", idempotent=True, business_key="key")
def needs_fix(self: SiteopsTask, site: str, key: str) -> str:
    """Refused permanently until an operator 'fixes the data' (sets fixed:<key>)."""
    r = remote()
    if r.get(f"fixed:{key}") != "yes":
        raise PermanentError(f"record {key} is invalid", system="sim", operation="create")
    r.rpush(f"effects:{key}", self.request.id)
    return "done"


@siteops_task("siteops.testing.effect_then_hold", idempotent=True, business_key="key")
def effect_then_hold(self: SiteopsTask, site: str, key: str, hold_seconds: float = 60.0) -> Any:
    """An idempotent side effect, then a hold (the window in which the test kills us)."""
    r = remote()
    result = self.idempotent_call(f"test:{site}:{key}", lambda: r.rpush(f"effects:{key}", self.request.id),
                                  on_unknown="dead_letter")
    r.rpush(f"started:{key}", f"{self.request.hostname}|{os.getpid()}")
    deadline = time.monotonic() + hold_seconds
    while time.monotonic() < deadline and not r.exists(f"release:{key}"):
        time.sleep(0.05)  # the workload itself: a long task holding its message unacked
    return result


@siteops_task("siteops.testing.record", idempotent=True)
def record(self: SiteopsTask, site: str, key: str) -> None:
    remote().rpush(f"ran:{key}", f"{site}|{self.request.hostname}")


@siteops_task("siteops.testing.noop", idempotent=True)
def noop(self: SiteopsTask, site: str) -> None:
    return None


def _crash_point_before_alert_publish() -> None:
    """Test-only crash point: a scan's pool process dies after its commit, before it
    publishes the alerts it owes. Armed by the test (`crash:before-alert-publish` in the
    remote Redis), it fires once; production code has no such hook (this module is loaded
    only by the test workers, through SITEOPS_TASK_MODULES)."""
    from siteops.services import scans

    original = scans.publish_owed

    def publish_owed(site_code: str, applied: Any, channels: tuple[str, ...]) -> None:
        if applied.opened and remote().delete("crash:before-alert-publish"):
            os._exit(70)  # like a SIGKILL: no cleanup, no except clause runs
        original(site_code, applied, channels)

    scans.publish_owed = publish_owed  # type: ignore[assignment]


_crash_point_before_alert_publish()


@siteops_task("siteops.testing.effect_in_reply_window", idempotent=True, business_key="key",
              on_unknown="dead_letter")
def effect_in_reply_window(self: SiteopsTask, site: str, key: str, hold_seconds: float = 60.0) -> Any:
    """The effect reaches the remote side, then its reply takes long (the window in which
    the test kills or stops us). No check: an unknown outcome is for a human."""
    r = remote()

    def effect() -> int:
        done = int(r.rpush(f"effects:{key}", self.request.id))
        r.rpush(f"started:{key}", f"{self.request.hostname}|{os.getpid()}")
        deadline = time.monotonic() + hold_seconds
        while time.monotonic() < deadline and not r.exists(f"release:{key}"):
            time.sleep(0.05)  # waiting for the remote side's reply
        return done

    return self.idempotent_call(f"test:{site}:reply:{key}", effect)


@siteops_task("siteops.testing.tick", site_bound=False, idempotent=True)
def tick(self: SiteopsTask) -> None:
    """A cheap platform task for beat's schedule in the beat tests."""


if os.environ.get("SITEOPS_TEST_BEAT_TICK"):
    # The beat tests need an entry that fires every few seconds (scans fire per minute).
    from siteops.celery_app import app as _app

    _app.conf.beat_schedule["testing-tick"] = {
        "task": "siteops.testing.tick", "schedule": float(os.environ["SITEOPS_TEST_BEAT_TICK"]),
        "options": {"queue": "platform", "expires": 20.0},
    }


@housekeeping_job("testing-count", every=1.0)
def count_housekeeping(app: Any) -> int:
    """Counts its runs; acts (returns 1) only while the test sets housekeeping:act."""
    r = remote()
    r.incr("housekeeping:runs")
    return 1 if r.exists("housekeeping:act") else 0


@housekeeping_job("testing-fail", every=1.0)
def failing_housekeeping(app: Any) -> int:
    """Raises while the test sets housekeeping:fail: the timer must keep going."""
    r = remote()
    if r.exists("housekeeping:fail"):
        r.incr("housekeeping:failures")
        raise RuntimeError("housekeeping job failed on purpose")
    return 0
