"""EDI tasks on the site's queue: send confirmed orders, take in what partners send.

Thin: `siteops.services.edi` does the work. Each task is idempotent (late ack): the
order file is sent once per order (an operation held in the store, checked against the
exchange records), inbound files are claimed by checksum, Odoo writes are plain values
and each chatter note is an operation with a check.
"""

from __future__ import annotations

from typing import Any

from siteops.services import edi as service
from siteops.tasks.base import SiteopsTask, siteops_task
from siteops.worker.housekeeping import housekeeping_job


@siteops_task("siteops.edi.dispatch_po", idempotent=True, business_key="po_id")
def dispatch_po(self: SiteopsTask, site: str, po_id: int) -> dict[str, Any]:
    from siteops.connectors.odoo import get_client

    return service.dispatch_po(site, int(po_id), odoo=get_client(site), once=self.idempotent_call)


@siteops_task("siteops.edi.scan_orders", idempotent=True)
def scan_orders(self: SiteopsTask, site: str) -> dict[str, Any]:
    """Confirmed orders of EDI vendors not sent yet -> one dispatch_po each."""
    from siteops.connectors.odoo import get_client

    ids = service.orders_to_send(site, odoo=get_client(site))
    for po_id in ids:
        dispatch_po.delay(site, po_id)
    return {"site": site, "dispatched": ids}


@siteops_task("siteops.edi.poll_inbound", idempotent=True)
def poll_inbound(self: SiteopsTask, site: str) -> dict[str, Any]:
    from siteops.connectors.odoo import get_client

    return service.poll_inbound(site, odoo=get_client(site), once=self.idempotent_call)


@housekeeping_job("edi-ack-deadlines", every=60)
def sweep_ack_deadlines(app: Any) -> int:
    """Orders past their partner's acknowledgment deadline become findings (and alerts)."""
    return len(service.sweep_overdue())  # each finding's alerts are owed and published with it
