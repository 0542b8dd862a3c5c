"""A worker whose main process is stopped (not dead) is not taken for dead: its message is
not put back while it is silent, and its effect happens once. In a file of its own so that
its 45 seconds run beside the other crash tests, not after them."""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest

from tests.conftest import poll
from tests.integration.test_crash_recovery import platform_worker, recovery_passes, started

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.slow
def test_a_stopped_main_process_is_not_taken_for_dead(stack, remote) -> None:
    from siteops.store import audit
    from tests.integration.fixture_tasks import effect_in_reply_window

    platform_worker(stack)
    victim = stack.worker("SOUTH", concurrency=1)
    key = uuid.uuid4().hex
    result = effect_in_reply_window.delay("SOUTH", key, hold_seconds=300)
    [(_host, child)] = poll(lambda: started(remote, key), 30, "the effect to start in the pool child")
    assert child in victim.children()
    [tag] = [t.decode() for t, raw in stack.redis.hgetall("unacked").items() if result.id.encode() in raw]

    # The main process stalls (SIGSTOP: a swap storm, a frozen cgroup); its child runs on.
    os.kill(victim.process.pid, signal.SIGSTOP)
    try:
        stopped_at = time.monotonic()
        passes_at_stop = recovery_passes(stack)
        second = stack.worker("SOUTH", concurrency=1)
        # For 45 s: the message stays with its worker, nobody else starts the effect.
        while time.monotonic() - stopped_at < 45:
            assert stack.redis.hexists("unacked", tag), "the stopped worker's message was put back"
            assert len(started(remote, key)) == 1, "a second copy of the task started"
            time.sleep(0.5)  # watching an invariant for the scenario's duration, not waiting for an event
        assert recovery_passes(stack) - passes_at_stop >= 6  # recovery was running all along
    finally:
        os.kill(victim.process.pid, signal.SIGCONT)

    remote.set(f"release:{key}", 1)
    assert result.get(timeout=60) == 1
    assert remote.llen(f"effects:{key}") == 1
    assert [r.state for r in audit.runs_for(result.id)] == ["succeeded"]
    assert result.id not in second.log_text()
    victim.stop()
    second.stop()
