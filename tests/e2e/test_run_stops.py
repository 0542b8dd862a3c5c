"""`siteops run` stops everything it started, however it is stopped (issue 9, item 2).

Ctrl-C, SIGTERM and SIGHUP, with stdout a pipe whose reader died (`make run | tee` and
Ctrl-C), and the supervisor itself SIGKILLed: each case counts the processes the stack
left behind, and there must be none. The cheap stack (Redis, the webhook receiver, one
site worker and its pool) keeps them fast. The SIGKILL case needs the whole stack, where
nothing but the parent-death signal is left to stop every kind of child: the make run e2e
ends its second run that way (tests/e2e/test_make_run.py), so no third whole stack runs.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, poll
from tests.e2e.runstack import CHEAP, RunStack, pgid_of, processes_with

# A whole stack starting beside the rest of the suite on two cores can take minutes; the
# runner fails by itself sooner when a part is broken (its own waits: 90 s workers, 60 s each service).
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(480)]


def start(stack: RunStack, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(stack.argv(*extra), cwd=ROOT, env=stack.env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def wait_running(run: subprocess.Popen[bytes], log: Path, stack: RunStack) -> list[int]:
    poll(lambda: "siteops is running" in log.read_text() or run.poll() is not None, 300, "the stack to start",
         interval=0.2)
    assert run.poll() is None, log.read_text()
    started = processes_with(str(stack.var))
    assert len(started) >= 4, started  # supervisor, Redis, receiver, worker and its pool
    return started


def assert_nothing_left(stack: RunStack, timeout: float = 60) -> None:
    poll(lambda: not processes_with(str(stack.var)), timeout, "every process of the stack to exit", interval=0.2)


# SIGTERM: see test_a_closed_stdout_never_stops_the_shutdown, which stops the stack with it.
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP], ids=["ctrl-c", "sighup"])
def test_a_signal_stops_every_process(tmp_path: Path, sig: signal.Signals) -> None:
    stack = RunStack(tmp_path / "var")
    log = tmp_path / "run.out"
    run = start(stack, log, *CHEAP)
    try:
        started = wait_running(run, log, stack)
        # The children share one process group, not the terminal's: a Ctrl-C reaches only
        # the supervisor, which stops them in order.
        groups = {pgid_of(p) for p in started if p != run.pid}
        assert len(groups) == 1 and pgid_of(run.pid) not in groups, groups
        run.send_signal(sig)
        assert run.wait(60) == 0
    finally:
        if run.poll() is None:
            run.kill()
    assert "stopped: every process this run started has exited." in log.read_text()
    assert_nothing_left(stack, timeout=5)


def test_ctrl_c_with_the_output_piped_to_a_reader_that_dies_too(tmp_path: Path) -> None:
    """`make run | tee run.log`, then Ctrl-C: the terminal's SIGINT reaches tee as well, so
    every print after it fails (EPIPE); the shutdown must go on regardless."""
    stack = RunStack(tmp_path / "var")
    log = tmp_path / "tee.out"
    line = f"{shlex.join(stack.argv(*CHEAP))} 2>&1 | tee {shlex.quote(str(log))} > /dev/null"
    shell = subprocess.Popen(["bash", "-c", line], cwd=ROOT, env=stack.env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        poll(lambda: (log.exists() and "siteops is running" in log.read_text()) or shell.poll() is not None, 300,
             "the stack to start", interval=0.2)
        assert shell.poll() is None, log.read_text()
        os.killpg(shell.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
        shell.wait(60)
    finally:
        if shell.poll() is None:
            os.killpg(shell.pid, signal.SIGKILL)
    assert_nothing_left(stack)
    assert "Traceback" not in log.read_text()


def test_a_closed_stdout_never_stops_the_shutdown(tmp_path: Path) -> None:
    """The reader of stdout goes away first, then SIGTERM (`kill`): every later print hits EPIPE."""
    stack = RunStack(tmp_path / "var")
    run = subprocess.Popen(stack.argv(*CHEAP), cwd=ROOT, env=stack.env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    assert run.stdout is not None
    seen = b""
    try:
        while b"Ctrl-C stops everything" not in seen:
            chunk = run.stdout.read1(4096)
            assert chunk, f"the stack exited before it was up:\n{seen.decode(errors='replace')}"
            seen += chunk
        run.stdout.close()
        run.send_signal(signal.SIGTERM)
        assert run.wait(60) == 0
    finally:
        if run.poll() is None:
            run.kill()
    assert_nothing_left(stack, timeout=5)
