"""Shipping rules, pure: which parcels need a person, and what is ready to ship.

A parcel in `exception` or `returned` is a finding of kind `shipment_exceptions` on its
picking (one per picking and rule); a delivered parcel resolves its exception finding (a
return stays until a person deals with it: the goods came back).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from siteops.connectors.carriers.model import TrackStatus
from siteops.rules.findings import Observation

KIND = "shipment_exceptions"
RULE_VERSION = "1"
RULES = {TrackStatus.EXCEPTION: ("carrier_exception", 3), TrackStatus.RETURNED: ("carrier_return", 2)}


def ready_to_ship(picking: Mapping[str, Any]) -> str | None:
    """None when a label may be bought for this picking; otherwise why not."""
    if picking.get("picking_type_code") != "outgoing":
        return f"not an outgoing transfer ({picking.get('picking_type_code')})"
    if picking.get("state") != "assigned":
        return f"not ready (state {picking.get('state')})"
    if picking.get("carrier_tracking_ref"):
        return "already has a tracking reference"
    return None


def observation(site: str, shipment: Mapping[str, Any], status: str, params: Mapping[str, Any]) -> Observation | None:
    """The finding a tracking status raises, or None when it needs nobody."""
    try:
        rule, severity = RULES[TrackStatus(status)]
    except (KeyError, ValueError):
        return None
    what = "delivery exception" if rule == "carrier_exception" else "returned to sender"
    message = shipment.get("message") or shipment.get("detail") or ""
    return Observation(
        site=site, kind=KIND, rule=rule, model="stock.picking", record_id=int(shipment["picking_id"]),
        record_name=str(shipment["picking"]), severity=severity,
        title=f"{shipment['picking']}: {what} ({shipment.get('carrier') or ''} {shipment['tracking_code']})"
              f"{': ' + message if message else ''}",
        rule_version=RULE_VERSION, params={"carrier": params.get("carrier")},
        details={"tracking_code": shipment["tracking_code"], "carrier_status": shipment.get("carrier_status"),
                 "detail": shipment.get("detail"), "message": message, "status_at": shipment.get("status_at")},
    )


def resolves(status: str, rule: str) -> bool:
    """Does this status end a finding of `rule`? A delivery ends an exception; nothing ends a return."""
    return status == TrackStatus.DELIVERED and rule == "carrier_exception"
