"""Two beats: one schedules, the other takes over when the leader dies; no slot fires twice."""

from __future__ import annotations

import datetime as dt
import itertools
import time

import pytest

from tests.conftest import poll

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TICK = 10.0


def tick_runs(since: dt.datetime) -> list[dt.datetime]:
    """When the test beat entry's task (`siteops.testing.tick`) started, since `since`."""
    from siteops.store import session
    from siteops.store.models import JobRun

    with session() as s:
        rows = s.query(JobRun.started_at).filter(JobRun.task_name == "siteops.testing.tick",
                                                 JobRun.started_at >= since).order_by(JobRun.started_at)
        return [r[0] for r in rows]


def test_two_beats_schedule_once_and_the_standby_takes_over(stack) -> None:
    from siteops.schedules.beat import BEAT_LOCK_TIMEOUT
    since = dt.datetime.now(dt.UTC)

    def runs() -> list[dt.datetime]:
        return tick_runs(since)

    stack.worker(platform=True)
    # A test entry every TICK seconds (tests/integration/fixture_tasks.py): beat's own
    # schedule only has scans, which fire per minute.
    env = {"SITEOPS_TEST_BEAT_TICK": str(TICK)}
    first, second = stack.beat(env), stack.beat(env)
    leader = poll(lambda: next((b for b in (first, second) if "Acquired lock" in b.log_text()), None), 30,
                  "one beat to take the leader lock")
    standby = second if leader is first else first
    poll(lambda: len(runs()) >= 3, 60, "three scheduled runs")
    assert "Acquired lock" not in standby.log_text()

    # The leader dies without a chance to release its lock.
    leader.kill_whole()
    killed = time.monotonic()
    poll(lambda: "Acquired lock" in standby.log_text(), 60, "the standby to take the lock")
    took_over = time.monotonic() - killed
    count_at_kill = len(runs())
    poll(lambda: len(runs()) >= count_at_kill + 2, 60, "scheduling to go on under the new leader")

    # No slot fired twice: consecutive runs are about one interval apart, never two at once.
    times = runs()
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert min(gaps) > TICK * 0.5, gaps
    assert took_over < BEAT_LOCK_TIMEOUT + 15


def test_a_leader_stalled_past_its_lock_stands_by_instead_of_dying_or_firing_twice(stack) -> None:
    """A stalled (not dead) leader: its lock expires, the standby leads; when it wakes up it
    must neither schedule beside the new leader nor die (RedBeat raises LockNotOwnedError),
    and it leads again once the other is gone."""
    import os
    import signal

    from siteops.schedules.beat import BEAT_LOCK_TIMEOUT
    since = dt.datetime.now(dt.UTC)

    def runs() -> list[dt.datetime]:
        return tick_runs(since)

    for earlier in [p for p in stack.procs if p.name in ("beat", "platform")]:
        earlier.stop()  # another test's beats: a stopped beat gives its lock back
    stack.worker(platform=True)
    env = {"SITEOPS_TEST_BEAT_TICK": str(TICK)}
    first, second = stack.beat(env), stack.beat(env)
    leader = poll(lambda: next((b for b in (first, second) if "Acquired lock" in b.log_text()), None),
                  BEAT_LOCK_TIMEOUT + 30, "one beat to take the leader lock")
    standby = second if leader is first else first
    poll(lambda: len(runs()) >= 2, 60, "scheduled runs")

    os.killpg(leader.process.pid, signal.SIGSTOP)  # stalled: alive, silent, its lock running out
    try:
        poll(lambda: "Acquired lock" in standby.log_text(), BEAT_LOCK_TIMEOUT + 30, "the standby to take the lock")
    finally:
        os.killpg(leader.process.pid, signal.SIGCONT)
    poll(lambda: "lost the leader lock" in leader.log_text() or not leader.alive(), 30,
         "the stalled leader to notice it lost the lock")
    assert leader.alive(), leader.log_text()[-3000:]
    count = len(runs())
    poll(lambda: len(runs()) >= count + 1, 60, "scheduling to go on under the new leader")
    assert leader.alive()

    standby.kill_whole()  # the new leader dies: the one that stalled leads again
    poll(lambda: leader.log_text().count("Acquired lock") >= 2, BEAT_LOCK_TIMEOUT + 30, "the first beat to lead again")
    count = len(runs())
    poll(lambda: len(runs()) >= count + 1, 60, "scheduling to go on under the first beat again")
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(runs())]
    assert min(gaps) > TICK * 0.5, gaps  # never two beats firing one slot
