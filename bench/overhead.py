"""Overhead of the siteops task base class against bare Celery, measured in one run.

Both drain a prefilled queue of N no-op tasks with a prefork worker (-c 2), the same
broker (a private redis-server), JSON, prefetch 1, late acks and task events. siteops
adds an audit row per run (two short transactions in SQLite), metrics, the log context
and the heartbeat. Prints both throughputs and their ratio (goal: >= 0.85).

    python bench/overhead.py [--tasks 3000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def drain(cmd: list[str], env: dict[str, str], client, queue: str, n: int, log: Path) -> float:
    """Start a worker on a prefilled queue; tasks/s from first progress to empty."""
    with open(log, "ab") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def left() -> int:
            return int(client.llen(queue)) + int(client.hlen("unacked"))

        deadline = time.monotonic() + 120
        while left() >= n:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"worker did not start; see {log}")
            time.sleep(0.005)
        t0, start_left = time.monotonic(), left()
        while left() > 0:
            if time.monotonic() > deadline + 300:
                raise SystemExit(f"worker did not drain; see {log}")
            time.sleep(0.005)
        return start_left / (time.monotonic() - t0)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    opts = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="siteops-bench-"))
    from siteops.sim.embedded import RedisServer, free_port

    server = RedisServer(port=free_port(), data_dir=tmp / "redis").start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SITEOPS_")}
    env.update(SITEOPS_BROKER_URL=f"{server.url}/0", BENCH_RESULT_BACKEND=f"{server.url}/1",
               SITEOPS_VAR_DIR=str(tmp / "var"), SITEOPS_TASK_MODULES="bench.overhead_tasks",
               SITEOPS_LOG_LEVEL="WARNING", PROMETHEUS_MULTIPROC_DIR=str(tmp / "prom"))
    (tmp / "prom").mkdir()
    os.environ.update(env)
    from siteops.store import upgrade

    upgrade()  # workers never migrate: the bench's fresh store is migrated on purpose

    import redis

    from bench.overhead_tasks import bare_noop, siteops_noop

    client = redis.Redis(port=server.port)
    bare_cmd = [sys.executable, "-m", "celery", "-A", "bench.overhead_tasks:bare", "worker", "-Q", "bare",
                "-c", "2", "-l", "WARNING", "-E", "--without-mingle", "--without-gossip", "-n", "bare@%h"]
    ours_cmd = [sys.executable, "-m", "siteops.cli", "worker", "--site", "NORTH", "-c", "2", "-l", "WARNING"]
    results: dict[str, list[float]] = {"bare Celery": [], "siteops": []}
    try:
        for rnd in range(opts.rounds):
            for label, task, cmd, queue in (("bare Celery", bare_noop, bare_cmd, "bare"),
                                            ("siteops", siteops_noop, ours_cmd, "site.NORTH")):
                for _ in range(opts.tasks):
                    task.apply_async(args=["NORTH"])
                rate = drain(cmd, env, client, queue, opts.tasks, tmp / f"{queue}.log")
                results[label].append(rate)
                print(f"round {rnd + 1} {label:12s} {rate:7.0f} tasks/s", flush=True)
    finally:
        server.stop()
    bare_rate = statistics.median(results["bare Celery"])
    ours_rate = statistics.median(results["siteops"])
    print(f"\nno-op tasks, prefork -c 2, N={opts.tasks}, median of {opts.rounds} rounds")
    print(f"  bare Celery : {bare_rate:7.0f} tasks/s")
    print(f"  siteops     : {ours_rate:7.0f} tasks/s (audit row, metrics, log context, heartbeat)")
    print(f"  ratio       : {ours_rate / bare_rate:.2f}  (goal >= 0.85)")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
