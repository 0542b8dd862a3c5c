"""Operational tasks: the diagnostic ping and lost-work recovery."""

from __future__ import annotations

import os
from typing import Any

from siteops.tasks.base import SiteopsTask, siteops_task


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


@siteops_task("siteops.ops.recover_lost", site_bound=False, idempotent=True,
              # Beat runs it every few seconds; a stale copy is worthless.
              expires=30)
def recover_lost(self: SiteopsTask) -> dict[str, Any]:
    """Put back the messages of workers that died whole, and close their audit rows."""
    from siteops import recovery
    from siteops.observability.metrics import RECOVERED
    from siteops.store import audit

    with self.app.connection_for_write() as conn:
        channel = conn.default_channel
        if not hasattr(channel, "qos") or not hasattr(channel.qos, "restore_by_tag"):
            return {"skipped": "broker redelivers by itself (not Redis)"}
        client = channel.client
        report = recovery.recover(client, channel)
    for item in report.restored:
        RECOVERED.labels(item["queue"]).inc()
    live = {recovery.node_of(w) for w in report.live_workers}
    lost_runs = 0
    for worker in audit.running_workers():
        if worker not in live and worker != self.request.hostname:
            lost_runs += audit.mark_worker_runs_lost(worker)
    return {
        "restored": report.restored,
        "dead_workers": report.dead_workers,
        "live_workers": report.live_workers,
        "lost_runs": lost_runs,
    }
