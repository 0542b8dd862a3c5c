"""Reconciliation jobs on the site's queue (area `siteops.reconcile`, site-bound): thin over
`siteops.services.reconcile`.

`run(site, kind, job_id, since, until, apply)`: one job for one site. Idempotent (late ack,
redelivered when its process dies): the job resumes from its checkpoint, and every change
is an operation keyed by job and record, so nothing is done twice. Progress is a Celery
custom state, ``PROGRESS`` with ``{"done", "total", "job_id"}`` (what `--wait` and Flower show).
"""

from __future__ import annotations

from typing import Any

from siteops.tasks.base import SiteopsTask, siteops_task


# on_unknown="repeat": every effect of ours has a check or says so itself; the only calls
# without one are the EDI connector's functional acknowledgments (sent while applying an
# 855 from the mailbox), and a repeated 997/CONTRL is harmless to the partner.
@siteops_task("siteops.reconcile.run", idempotent=True, business_key="job_id", on_unknown="repeat")
def run(self: SiteopsTask, site: str, kind: str, job_id: str, since: str | None = None, until: str | None = None,
        apply: bool = False, batch_size: int | None = None) -> dict[str, Any]:
    from siteops.services import reconcile
    from siteops.services.scans import ScanLock

    # One run of a job at a time (a manual re-run while it runs is refused); a redelivery
    # of the same message takes the lock over from its dead predecessor.
    lock = ScanLock(site, f"reconcile-{job_id}", self.request.id)
    if not lock.acquire():
        return {"job_id": job_id, "kind": kind, "site": site, "skipped": lock.refused.replace("scan", "run")}

    def progress(done: int, total: int) -> None:
        if self.request.id is not None:
            self.update_state(state="PROGRESS", meta={"done": done, "total": total, "job_id": job_id})

    with lock:
        return reconcile.run(site, kind, job_id, since=since, until=until, apply=bool(apply),
                             call=self.idempotent_call, progress=progress, task_id=self.request.id,
                             batch_size=batch_size)
