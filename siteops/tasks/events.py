"""Events from Odoo: a changed record (from the ingress or the catch-up) -> follow-up tasks."""

from __future__ import annotations

from typing import Any

from siteops.connectors.odoo import get_client
from siteops.rules.events import FollowUp
from siteops.services import events
from siteops.store.models import utcnow
from siteops.tasks.base import SiteopsTask, siteops_task


def _dispatcher(task: SiteopsTask) -> events.Dispatch:
    def dispatch(follow_up: FollowUp) -> str | None:
        # A follow-up whose task this deployment does not run (a connector not set up)
        # is reported in the result, not sent to a queue nobody serves.
        if follow_up.task not in task.app.tasks:
            return None
        return str(task.app.send_task(follow_up.task, args=list(follow_up.args)).id)

    return dispatch


@siteops_task("siteops.events.record_changed", idempotent=True, business_key="record_id")
def record_changed(self: SiteopsTask, site: str, model: str, record_id: int) -> dict[str, Any]:
    """Re-read the changed record and enqueue what its current state calls for."""
    return events.handle_change(site, model, int(record_id), odoo=get_client(site), dispatch=_dispatcher(self))


@siteops_task("siteops.events.catch_up", idempotent=True)
def catch_up(self: SiteopsTask, site: str) -> dict[str, Any]:
    """Find the site's records changed since the last pass that no event covered."""
    def announce(model: str, record_id: int) -> None:
        record_changed.apply_async(args=[site, model, record_id])

    counts = events.catch_up(site, odoo=get_client(site), announce=announce, now=utcnow())
    return {"announced": counts}
