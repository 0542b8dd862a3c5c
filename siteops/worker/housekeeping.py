"""Housekeeping jobs: periodic work that runs *inside* the platform worker, not as beat tasks.

Why not beat tasks: a sweep every few seconds as a task floods Flower and the audit trail
(8,640 rows a day for one 10-second job) and buries the scans operators look for. A job
here runs on a timer in the platform worker's main process and records only when it acts.

A module declares a job with the decorator; the platform worker runs every registered job
on its interval (see `HousekeepingStep`), the first time a second after it is ready. A job
returns the number of things it acted on (0 when there was nothing to do); it must be safe
to run in two platform workers at once.

    @housekeeping_job("sweep-owed-alerts", every=60)
    def sweep_owed_alerts(app) -> int: ...
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from celery import bootsteps

JobFn = Callable[[Any], int]


@dataclass(frozen=True)
class Job:
    name: str
    every: float
    fn: JobFn


JOBS: dict[str, Job] = {}


def housekeeping_job(name: str, *, every: float) -> Callable[[JobFn], JobFn]:
    """Register `fn(app) -> int` to run every `every` seconds in the platform worker."""

    def register(fn: JobFn) -> JobFn:
        JOBS[name] = Job(name, float(every), fn)
        return fn

    return register


# --- the runner: a consumer bootstep, started only in a worker that serves `platform` ---

log = logging.getLogger(__name__)
#: The first run of every job, this long after the worker is ready (then every `every`).
FIRST_RUN_AFTER = 1.0


class Runner(threading.Thread):
    """Runs each job on its interval, isolated: an exception is logged and counted, and
    the timer keeps going. Logs (and counts actions) only when a job acted (> 0)."""

    def __init__(self, app: Any, jobs: Mapping[str, Job] | None = None) -> None:
        super().__init__(name="siteops-housekeeping", daemon=True)
        self.app = app
        self.jobs = dict(JOBS if jobs is None else jobs)
        self.stopping = threading.Event()
        self.errors: dict[str, int] = {}

    def run_job(self, job: Job) -> int:
        from siteops.observability.metrics import HOUSEKEEPING_ACTIONS, HOUSEKEEPING_RUNS

        try:
            acted = int(job.fn(self.app) or 0)
        except Exception:
            self.errors[job.name] = self.errors.get(job.name, 0) + 1
            HOUSEKEEPING_RUNS.labels(job.name, "error").inc()
            log.exception("housekeeping job %s failed (%d times so far); it runs again in %gs",
                          job.name, self.errors[job.name], job.every)
            return 0
        HOUSEKEEPING_RUNS.labels(job.name, "acted" if acted > 0 else "idle").inc()
        if acted > 0:
            HOUSEKEEPING_ACTIONS.labels(job.name).inc(acted)
            log.info("housekeeping job %s acted on %d item(s)", job.name, acted)
        return acted

    def run(self) -> None:
        start = time.monotonic() + FIRST_RUN_AFTER
        due = {name: start for name in self.jobs}
        while not self.stopping.is_set():
            now = time.monotonic()
            for name, job in self.jobs.items():
                if due[name] <= now and not self.stopping.is_set():
                    self.run_job(job)
                    # From the planned time, not from the end of the run: no drift;
                    # a run longer than its interval skips the missed slots.
                    due[name] = max(due[name] + job.every, time.monotonic())
            self.stopping.wait(max(0.05, min(due.values(), default=now + 1.0) - time.monotonic()))

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        self.join(timeout)


class HousekeepingStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Consumer bootstep: starts the `Runner` once the worker consumes `platform`.

    A consumer restarts its steps on a broker reconnect; the runner keeps going (its jobs
    deal with a broker that is away) and stops only at shutdown.
    """

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.runner: Runner | None = None

    def start(self, c: Any) -> None:
        from siteops.config.queues import PLATFORM_QUEUE

        if self.runner is not None or PLATFORM_QUEUE not in c.app.amqp.queues.consume_from:
            return
        self.runner = Runner(c.app)
        self.runner.start()
        log.info("housekeeping: %s", ", ".join(f"{j.name} every {j.every:g}s" for j in self.runner.jobs.values())
                 or "no jobs registered")

    def stop(self, c: Any) -> None:
        pass  # a reconnect, not the end

    def shutdown(self, c: Any) -> None:
        if self.runner is not None:
            self.runner.stop()
            self.runner = None
