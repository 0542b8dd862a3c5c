"""Housekeeping jobs: periodic work that runs *inside* the platform worker, not as beat tasks.

Why not beat tasks: a sweep every few seconds as a task floods Flower and the audit trail
(8,640 rows a day for one 10-second job) and buries the scans operators look for. A job
here runs on a timer in the platform worker's main process and records only when it acts.

A module declares a job with the decorator; the platform worker runs every registered job
on its interval (see `HousekeepingStep`). A job returns the number of things it acted on
(0 when there was nothing to do); it must be safe to run in two platform workers at once.

    @housekeeping_job("sweep-owed-alerts", every=60)
    def sweep_owed_alerts(app) -> int: ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
