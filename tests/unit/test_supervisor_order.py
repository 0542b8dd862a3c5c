"""`siteops run` stops siteops's own processes before the simulators they call: a worker's
warm shutdown finishes its last task against a simulator that is still there, instead of
leaving it retrying on a refused connection (seen in a fresh `make run`, at Ctrl-C)."""

from __future__ import annotations

import sys
from pathlib import Path

from siteops.sim.embedded import RedisServer
from siteops.sim.runner import Child, Supervisor
from tests.conftest import _free_port, poll

# A child that notes when it is told to stop and when it has stopped; `linger` is its warm shutdown.
SCRIPT = """
import signal, sys, time
name, out, linger = sys.argv[1], sys.argv[2], float(sys.argv[3])
def note(what):
    with open(out, "a") as f:
        f.write(f"{name} {what} {time.monotonic()}\\n")
def stop(*_):
    note("told")
    time.sleep(linger)  # finishing the task in hand
    note("gone")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
note("up")
while True:
    time.sleep(0.05)
"""


def test_workers_are_stopped_and_gone_before_the_simulators_are_told(tmp_path: Path) -> None:
    out = tmp_path / "events"
    server = RedisServer(port=_free_port(), data_dir=tmp_path / "redis")  # never started: nothing to stop

    def child(name: str, linger: float, outer: bool) -> Child:
        return Child(name, [sys.executable, "-c", SCRIPT, name, str(out), str(linger)], tmp_path / f"{name}.log",
                     outer=outer)

    children = [child("odoo-sim", 0.0, True), child("worker", 1.0, False), child("carrier-sim", 0.0, True)]
    sup = Supervisor(server, children, env={})
    for c in children:
        sup.start(c)
    poll(lambda: out.exists() and out.read_text().count(" up ") == 3, 30, "the children to start")

    sup.stop()

    events = {}
    for line in out.read_text().splitlines():
        name, what, at = line.split()
        events[(name, what)] = float(at)
    assert all(not c.alive() for c in children)
    for sim in ("odoo-sim", "carrier-sim"):
        assert events[(sim, "told")] >= events[("worker", "gone")], events
