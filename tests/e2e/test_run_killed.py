"""The supervisor of the whole stack SIGKILLed: nobody is left to stop its children, so the
kernel's parent-death signal must. In a file of its own so that it runs beside the cheaper
stop tests, not after them."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.e2e.runstack import RunStack
from tests.e2e.test_run_stops import assert_nothing_left, start, wait_running

# A whole stack starting beside the rest of the suite on two cores can take minutes; the
# runner fails by itself sooner when a part is broken (its own waits: 90 s workers, 60 s each service).
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(480)]


def sigkill_supervisor(tmp_path: Path, *extra: str) -> None:
    stack = RunStack(tmp_path / "var")
    log = tmp_path / "run.out"
    run = start(stack, log, *extra)
    try:
        wait_running(run, log, stack)
        run.send_signal(signal.SIGKILL)
        run.wait(10)
    finally:
        if run.poll() is None:
            run.kill()
    # Nobody is left to stop them: the kernel's parent-death signal does.
    assert_nothing_left(stack, timeout=60)


def test_sigkill_of_the_supervisor_of_the_whole_stack_leaves_nothing(tmp_path: Path) -> None:
    """Every part: the simulators, the ingress, a site worker, the platform worker, beat, Flower, the
    exporter (one site: the other site workers are the same kind of child, and four more of them
    only slow the rest of the suite)."""
    sigkill_supervisor(tmp_path, "--site", "NORTH", "--without", "scans")
