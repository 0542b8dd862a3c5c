"""Operational tasks: the diagnostic ping; lost-work recovery (a housekeeping job, and a task on demand)."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from siteops.observability.metrics import RECOVERED
from siteops.store import audit
from siteops.store.models import RunState
from siteops.tasks.base import SiteopsTask, siteops_task
from siteops.worker import recovery
from siteops.worker import retention as _retention  # noqa: F401  (registers the daily job)
from siteops.worker.housekeeping import housekeeping_job


@siteops_task("siteops.ops.ping", idempotent=True)
def ping(self: SiteopsTask, site: str) -> dict[str, Any]:
    """Answer from the worker that serves `site`: proves routing end to end."""
    info = self.request.delivery_info or {}
    return {
        "site": site,
        "worker": self.request.hostname,
        "queue": info.get("routing_key"),
        "pid": os.getpid(),
    }


class _RecoveryJob:
    """The platform worker's recovery: one `Recoverer` (its evidence lasts between passes)
    and one broker connection, made again after an error."""

    def __init__(self) -> None:
        self.recoverer = recovery.Recoverer()
        self.conn: Any = None

    def __call__(self, app: Any) -> int:
        try:
            if self.conn is None:
                self.conn = app.connection_for_write()
            channel = self.conn.default_channel
            if not hasattr(channel, "qos") or not hasattr(channel.qos, "restore_by_tag"):
                return 0  # AMQP brokers redeliver by themselves
            report = self.recoverer.run(channel.client, channel, on_lost=_record_lost(app))
        except Exception:
            if self.conn is not None:
                self.conn.release()
            self.conn = None
            raise
        for item in report.restored:
            RECOVERED.labels(item["queue"]).inc()
        return len(report.restored)


recover_lost_work = housekeeping_job("recover-lost-work", every=recovery.RECOVERY_EVERY)(_RecoveryJob())


@siteops_task("siteops.ops.recover_lost", site_bound=False, idempotent=True, expires=300)
def recover_lost(self: SiteopsTask) -> dict[str, Any]:
    """Lost-work recovery once, on demand (the platform worker also runs it on its own
    every few seconds). Takes about 10 s: a tag must be seen unclaimed on 3 passes."""
    with self.app.connection_for_write() as conn:
        channel = conn.default_channel
        if not hasattr(channel, "qos") or not hasattr(channel.qos, "restore_by_tag"):
            return {"skipped": "broker redelivers by itself (not Redis)"}
        report = recovery.recover(channel.client, channel, on_lost=_record_lost(self.app))
    for item in report.restored:
        RECOVERED.labels(item["queue"]).inc()
    return {
        "restored": report.restored,
        "dead_workers": report.dead_workers,
        "live_workers": report.live_workers,
    }


def _record_lost(app: Any) -> Any:
    """The audit row of a run whose whole worker died (nobody else can write it)."""
    def record(info: dict[str, Any], worker: str | None, delivered_at: float) -> None:
        task = app.tasks.get(info["task_name"] or "")
        args, kwargs = info["args"], info["kwargs"]
        site = task.site_of(args, kwargs) if isinstance(task, SiteopsTask) else None
        audit.record_run(
            task_id=info["task_id"] or "?", task_name=info["task_name"] or "?", site=site,
            business_key=task.business_key_of(args, kwargs) if isinstance(task, SiteopsTask) else None,
            attempt=info["retries"] + 1, redelivered=False,
            worker=recovery.node_of(worker) if worker else None, pid=None,
            started_at=dt.datetime.fromtimestamp(delivered_at, dt.UTC), state=RunState.LOST,
            error=f"WorkerLost: worker {worker or '(unknown)'} died; message put back by lost-work recovery",
        )

    return record
