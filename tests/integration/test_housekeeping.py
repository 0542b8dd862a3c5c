"""Housekeeping runs inside the platform worker, on its own timer, quietly.

The jobs used here are registered by tests/integration/fixture_tasks.py: `testing-count`
counts its runs and acts only while the test says so; `testing-fail` raises while the test
says so. Lost-work recovery ("recover-lost-work") is a housekeeping job, not a beat task.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.conftest import poll

pytestmark = [pytest.mark.integration]


def _runs(remote) -> int:
    return int(remote.get("housekeeping:runs") or 0)


def test_the_platform_worker_runs_jobs_on_its_timer_isolated_and_quiet(stack, remote) -> None:
    from siteops.store import session
    from siteops.store.models import JobRun

    since = dt.datetime.now(dt.UTC)
    remote.delete("housekeeping:runs", "housekeeping:act", "housekeeping:fail", "housekeeping:failures")
    site_worker = stack.serving("CW")
    platform = stack.worker(platform=True)

    # The job runs again and again on its 1 s timer, in the platform worker only.
    poll(lambda: _runs(remote) >= 3, 30, "three runs of the housekeeping job")
    assert "housekeeping: " in platform.log_text() and "housekeeping: " not in site_worker.log_text()
    assert "testing-count acted" not in platform.log_text()  # idle runs leave no trace

    # A failing job is logged and counted; the timer (and the other jobs) keep going.
    remote.set("housekeeping:fail", 1)
    poll(lambda: int(remote.get("housekeeping:failures") or 0) >= 2, 30, "the failing job to run twice")
    runs = _runs(remote)
    poll(lambda: _runs(remote) >= runs + 2, 30, "the other job to keep running")
    assert "housekeeping job testing-fail failed" in platform.log_text()
    remote.delete("housekeeping:fail")

    # A run that acted is logged.
    remote.set("housekeeping:act", 1)
    poll(lambda: "housekeeping job testing-count acted on 1" in platform.log_text(), 30, "an acting run's log line")
    remote.delete("housekeeping:act")

    # Lost-work recovery is one of the jobs: it makes passes, and with nothing to recover it
    # leaves no audit row (no task run, no 'lost' row) and no task for Flower to list.
    passes = int(stack.redis.hget("siteops:recovery:status", "passes") or 0)
    poll(lambda: int(stack.redis.hget("siteops:recovery:status", "passes") or 0) >= passes + 3, 30,
         "three recovery passes")
    with session() as s:
        rows = s.query(JobRun).filter(JobRun.started_at >= since,
                                      (JobRun.task_name == "siteops.ops.recover_lost") | (JobRun.state == "lost"))
        assert rows.count() == 0
    assert "Task siteops.ops.recover_lost[" not in platform.log_text()  # no task runs
    platform.stop()
