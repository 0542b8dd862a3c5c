"""Shipping tasks on the site's queue (area `siteops.shipping`, site-bound): thin over
`siteops.services.shipping`.

- `create_shipment(site, picking_id)`: one label per ready outgoing picking, written back
  to Odoo. Idempotent (late ack): every carrier and Odoo effect holds an operation with
  a check, so a redelivery, retry or replay never buys a second label.
- `ship_ready(site)`: the scan that finds ready pickings without a label (beat);
- `sync_tracking(site)`: beat's poll of the parcels still travelling.
- `record_tracking(site, ...)`: one tracking update received by webhook (the ingress
  verified its signature and found its site).

A full rate limit raises `RateLimited` with the time to wait: the base class retries after
it (a wait longer than the backoff cap is parked in the database). An open circuit parks
the task until the circuit's cool-down is over, without spending a retry: the carrier is
down, the shipment is not at fault, and an outage longer than the retry budget must not
turn every waiting picking into a dead letter.
"""

from __future__ import annotations

from typing import Any

from siteops.connectors.carriers.guard import CircuitOpen
from siteops.connectors.carriers.model import TrackingUpdate, TrackStatus
from siteops.tasks.base import ParkUntil, SiteopsTask, siteops_task


@siteops_task("siteops.shipping.create_shipment", idempotent=True, business_key="picking_id")
def create_shipment(self: SiteopsTask, site: str, picking_id: int) -> dict[str, Any]:
    from siteops.services.shipping import Shipping

    try:
        return Shipping(site).create_shipment(self.idempotent_call, int(picking_id))
    except CircuitOpen as exc:
        raise ParkUntil(after=max(1.0, exc.retry_after), reason="circuit_open", error=exc) from None


@siteops_task("siteops.shipping.ship_ready", idempotent=True)
def ship_ready(self: SiteopsTask, site: str) -> dict[str, Any]:
    """Find the site's ready outgoing pickings without a label and enqueue one create_shipment each
    (a picking enqueued twice is harmless: its operations make the second a no-op)."""
    from siteops.services.shipping import Shipping

    ids = Shipping(site).ready_pickings()
    for picking_id in ids:
        create_shipment.delay(site, picking_id)
    return {"site": site, "enqueued": len(ids)}


@siteops_task("siteops.shipping.sync_tracking", idempotent=True)
def sync_tracking(self: SiteopsTask, site: str) -> dict[str, Any]:
    from siteops.services.shipping import Shipping

    return Shipping(site).sync_tracking()


@siteops_task("siteops.shipping.record_tracking", idempotent=True, business_key="tracking_code")
def record_tracking(self: SiteopsTask, site: str, shipment_row: int, tracking_code: str, status: str,
                    carrier_status: str, detail: str | None = None, message: str | None = None,
                    occurred_at: str | None = None, event_id: str | None = None) -> dict[str, Any]:
    from siteops.services.shipping import apply_update

    update = TrackingUpdate(tracking_code=tracking_code, status=TrackStatus(status), carrier_status=carrier_status,
                            detail=detail, message=message, occurred_at=occurred_at, event_id=event_id,
                            source="webhook")
    return {"tracking_code": tracking_code, "status": status,
            "changed": apply_update(site, int(shipment_row), update)}
