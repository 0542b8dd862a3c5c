"""Replenishment and approval tasks on the site's queue (thin over `siteops.services.approvals`).

- `siteops.replenish.check_product(site, product_id)`: the follow-up of a stock change
  (ingress or catch-up): a product below its minimum becomes a request, once.
- `siteops.approvals.advance(site, request_id)`: what a request is owed in Odoo next
  (the pending tier's activity, or the outcome once decided); the CLI enqueues it after
  a decision.
- `siteops.approvals.sync(site)`: beat's catch-up: activities marked done in Odoo are
  decisions, drafts people made above the thresholds become requests, anything owed is done.
- `siteops.approvals.escalate(site, tier_id)`: one overdue tier, escalated once; enqueued
  by the `approvals-escalate` housekeeping job, which reads the deadlines in the store.

All idempotent (late ack): every Odoo effect holds an operation keyed on the request or
tier, with a check, so a redelivery or replay creates nothing new.
"""

from __future__ import annotations

from typing import Any

from siteops.tasks.base import SiteopsTask, siteops_task
from siteops.worker.housekeeping import housekeeping_job


def _dispatch(task: SiteopsTask) -> Any:
    def dispatch(name: str, args: list[Any]) -> str | None:
        # The EDI helper's task may not be deployed yet: then the request records that
        # dispatch is pending, and the purchase.order event (state purchase) sends it later.
        if name not in task.app.tasks:
            return None
        return str(task.app.send_task(name, args=args).id)

    return dispatch


def _service(site: str) -> Any:
    from siteops.connectors.odoo import get_client
    from siteops.services.approvals import Approvals

    return Approvals(site, get_client(site))


@siteops_task("siteops.replenish.check_product", idempotent=True, business_key="product_id")
def check_product(self: SiteopsTask, site: str, product_id: int) -> dict[str, Any]:
    return _service(site).check_product(self.idempotent_call, int(product_id), _dispatch(self))  # type: ignore[no-any-return]


@siteops_task("siteops.approvals.advance", idempotent=True, business_key="request_id")
def advance(self: SiteopsTask, site: str, request_id: int) -> dict[str, Any]:
    return _service(site).advance(self.idempotent_call, int(request_id), _dispatch(self))  # type: ignore[no-any-return]


@siteops_task("siteops.approvals.sync", idempotent=True)
def sync(self: SiteopsTask, site: str) -> dict[str, Any]:
    return _service(site).sync(self.idempotent_call, _dispatch(self))  # type: ignore[no-any-return]


@siteops_task("siteops.approvals.escalate", idempotent=True, business_key="tier_id")
def escalate(self: SiteopsTask, site: str, tier_id: int) -> dict[str, Any]:
    return _service(site).escalate(self.idempotent_call, int(tier_id))  # type: ignore[no-any-return]


@housekeeping_job("approvals-escalate", every=60)
def escalate_overdue(app: Any) -> int:
    """Enqueue one `escalate` per pending tier past its deadline. A tier enqueued twice
    (the task still queued at the next pass) is harmless: it escalates once."""
    from siteops.store import approvals

    overdue = approvals.overdue()
    for row in overdue:
        app.send_task("siteops.approvals.escalate", args=[row["site"], row["tier_id"]])
    return len(overdue)
