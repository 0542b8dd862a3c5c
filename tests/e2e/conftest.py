"""End-to-end helpers: processes beyond the harness's workers (exporter, Prometheus, Flower).

Each process gets its own session (process group) and a log file; the `processes`
fixture stops every process it started, by its own group id, when the test ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, WorkerProcess

# The harness's process wrapper: its own session, a log, stop() by group id.
Proc = WorkerProcess


class Processes:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[Proc] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        log = self.log_dir / f"{name}.log"
        with open(log, "wb") as fh:
            process = subprocess.Popen(argv, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env={**os.environ, **(env or {})}, start_new_session=True)
        proc = Proc(name, process, log)
        self.procs.append(proc)
        return proc

    def siteops(self, name: str, *args: str, env: dict[str, str] | None = None) -> Proc:
        return self.start(name, [sys.executable, "-m", "siteops.cli", *args], env)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    try:
        yield procs
    finally:
        procs.stop()
        still = [p.name for p in procs.procs if p.alive()]
        assert not still, f"processes left running: {still}"


def answers(url: str, auth: tuple[str, str] | None = None) -> bool:
    """True when `url` answers 200 (used with poll() to wait for a server)."""
    try:
        return httpx.get(url, auth=auth, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def started(proc: Proc, url: str, auth: tuple[str, str] | None = None) -> bool:
    """For poll(): `url` answers, or fail at once with the log if the process died."""
    if not proc.alive():
        raise AssertionError(f"{proc.name} exited with {proc.process.returncode}:\n{proc.log_text()[-3000:]}")
    return answers(url, auth)
