"""Killed workers lose nothing, stalled ones are not taken for dead, effects happen at most once.

- a pool process SIGKILLed mid-task: Celery requeues the message (late ack +
  reject_on_worker_lost) and the rerun finds the effect already recorded;
- a pool process SIGKILLed inside the effect's reply window (the effect reached the
  remote side, the operation is still in flight): the redelivered task, same task id,
  does not call the effect again; it has no check, so it is dead-lettered for a human;
- a worker's main process SIGSTOPped for 45 s while its effect runs in the pool child,
  a second worker on the queue: the message is not put back, the effect happens once;
- the whole worker SIGKILLed (parent and children): the message sits in Redis's unacked
  set; the platform worker's housekeeping puts it back (within 90 s; about 15 s here).
"""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest

from tests.conftest import poll

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def started(remote, key: str) -> list[tuple[str, int]]:
    return [(h, int(p)) for h, p in (s.split("|") for s in remote.lrange(f"started:{key}", 0, -1))]


def platform_worker(stack):
    """The platform worker, whose housekeeping runs lost-work recovery."""
    for wp in stack.procs:
        if wp.name == "platform" and wp.alive():
            return wp
    return stack.worker(platform=True)


def recovery_passes(stack) -> int:
    return int(stack.redis.hget("siteops:recovery:status", "passes") or 0)


def test_pool_process_killed_in_the_reply_window_does_not_repeat_the_effect(stack, remote) -> None:
    from siteops.store import audit
    from tests.integration.fixture_tasks import effect_in_reply_window

    worker = stack.worker("NORTH", concurrency=2)
    key = uuid.uuid4().hex
    result = effect_in_reply_window.delay("NORTH", key, hold_seconds=120)
    # The effect has happened at the remote side; its reply has not come back yet.
    [(_host, pid)] = poll(lambda: started(remote, key), 30, "the effect to reach the remote side")
    assert remote.llen(f"effects:{key}") == 1
    os.kill(pid, signal.SIGKILL)

    # Celery redelivers the same task id at once; it must not call the effect again.
    poll(lambda: [r for r in audit.runs_for(result.id) if r.state == "dead_lettered"], 60,
         "the redelivered run to give up on the unknown outcome")
    assert remote.llen(f"effects:{key}") == 1
    assert started(remote, key) == [(_host, pid)]
    runs = audit.runs_for(result.id)
    assert [r.state for r in runs] == ["lost", "dead_lettered"]
    assert runs[1].redelivered is True
    [dead] = [d for d in audit.list_dead_letters(site="NORTH") if d.task_id == result.id]
    assert dead.error_class == "UnknownOutcome" and "resolve" in dead.error_message
    assert worker.alive()
    worker.stop()


def test_pool_process_killed_mid_task_reruns_with_one_side_effect(stack, remote) -> None:
    from siteops.store import audit
    from tests.integration.fixture_tasks import effect_then_hold

    worker = stack.worker("EAST", concurrency=2)
    key = uuid.uuid4().hex
    result = effect_then_hold.delay("EAST", key, hold_seconds=120)

    # The task did its side effect and is now holding; kill its pool process.
    [(_host, pid)] = poll(lambda: started(remote, key), 30, "the task to start")
    assert pid in worker.children()
    os.kill(pid, signal.SIGKILL)

    # Celery puts the message back at once and another pool process runs it again...
    second = poll(lambda: started(remote, key)[1:], 30, "the task to run again")
    assert second[0][1] != pid
    remote.set(f"release:{key}", 1)
    assert result.get(timeout=30) == 1  # the stored result of the one RPUSH
    # ...and the side effect happened exactly once.
    assert remote.llen(f"effects:{key}") == 1
    runs = audit.runs_for(result.id)
    assert [r.state for r in runs] == ["lost", "succeeded"]
    assert runs[1].redelivered is True
    assert worker.process.poll() is None  # the worker itself survived


def test_whole_worker_killed_resumes_within_90_seconds_with_one_side_effect(stack, remote) -> None:
    from siteops.store import audit
    from tests.integration.fixture_tasks import effect_then_hold

    platform_worker(stack)  # no beat: recovery is the platform worker's housekeeping
    victim = stack.worker("WEB", concurrency=1)
    key = uuid.uuid4().hex
    result = effect_then_hold.delay("WEB", key, hold_seconds=300)
    poll(lambda: started(remote, key), 30, "the task to start")

    # The OOM killer takes the whole worker: parent and pool process at once.
    victim.kill_whole()
    killed_at = time.monotonic()
    assert stack.redis.hlen("unacked") >= 1  # the message is stranded in Redis
    # A supervisor starts a replacement with the same node name (compose, systemd, make run).
    replacement = stack.worker("WEB", concurrency=1)

    resumed = poll(lambda: started(remote, key)[1:], 90, "the lost task to resume")
    resumed_after = time.monotonic() - killed_at
    assert resumed[0][1] in replacement.children()
    remote.set(f"release:{key}", 1)
    assert result.get(timeout=30) == 1
    assert remote.llen(f"effects:{key}") == 1
    states = [r.state for r in audit.runs_for(result.id)]
    assert states == ["lost", "succeeded"]
    print(f"whole-worker kill: work resumed {resumed_after:.1f}s after the kill")
    assert resumed_after < 90
