"""The sweeper that enqueues parked waits when they fall due (see store.waits).

A housekeeping job of the platform worker. Each due wait is claimed atomically (two
platform workers never both enqueue one), then sent through the normal path - the task's
`apply_async`, so the router picks its site queue and secret-looking arguments are
refused - with its original task id (callers waiting on the result keep waiting on the
right id) and its retry count. A wait the send path refuses (its site was removed from
sites.toml, say) is marked ``refused`` and dead-lettered; a publish that fails because
the broker is down gives the claim back for the next sweep.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from siteops.store import audit, waits
from siteops.store.transient import is_transient
from siteops.worker.housekeeping import housekeeping_job

log = logging.getLogger(__name__)

SWEEP_EVERY = 5.0


@housekeeping_job("enqueue-due-waits", every=SWEEP_EVERY)
def enqueue_due_waits(app: Any) -> int:
    """Enqueue every parked wait that is due; returns how many were enqueued."""
    claimer = uuid.uuid4().hex
    enqueued = 0
    for wait in waits.claim_due(claimer=claimer):
        try:
            options: dict[str, Any] = {"task_id": wait.task_id, "retries": wait.retries,
                                       "headers": {waits.RESUMED_HEADER: wait.id}}
            task = app.tasks.get(wait.task_name)
            if task is not None:
                task.apply_async(args=list(wait.args), kwargs=dict(wait.kwargs), **options)
            else:
                app.send_task(wait.task_name, args=list(wait.args), kwargs=dict(wait.kwargs), **options)
        except Exception as exc:
            if is_transient(exc):
                log.warning("parked wait #%d (%s): broker unavailable (%s); next sweep tries again", wait.id,
                            wait.task_name, exc)
                waits.release(wait.id, claimer)
                continue
            # Refused by the send path (unknown site or task, a secret-looking argument):
            # it will never be accepted as it is, so an operator gets it as a dead letter.
            error = f"{type(exc).__name__}: {exc}"
            log.error("parked wait #%d (%s) refused on re-enqueue: %s", wait.id, wait.task_name, error)
            audit.add_dead_letter(task_id=wait.task_id, task_name=wait.task_name, site=wait.site,
                                  business_key=wait.business_key, args=list(wait.args), kwargs=dict(wait.kwargs),
                                  reason="wait_refused", error=error, attempts=wait.retries + 1)
            waits.mark_refused(wait.id, error, claimer)
            continue
        waits.mark_enqueued(wait.id, claimer)
        log.info("parked wait #%d: %s[%s] enqueued (%s, due %s)", wait.id, wait.task_name, wait.task_id,
                 wait.reason, wait.due_at.isoformat())
        enqueued += 1
    return enqueued
