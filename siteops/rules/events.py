"""What a change to an Odoo record asks of siteops: pure decisions, no I/O.

An event (a webhook, or the catch-up scan) only says "record R of model M changed". The
worker re-reads R and these rules say which follow-up tasks its *current* state calls
for. Follow-ups are named by task name: the connector tasks they name are idempotent by
their business key, so a replayed webhook or a record seen by both a webhook and the
catch-up scan creates nothing new.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FollowUp:
    task: str
    args: tuple[Any, ...]
    why: str


@dataclass(frozen=True)
class Watched:
    model: str
    #: How a record belongs to a site: the field path to the site's warehouse id.
    warehouse_path: str
    #: What the rules below read (always with id and write_date).
    fields: tuple[str, ...]


WATCHED: dict[str, Watched] = {w.model: w for w in (
    Watched("stock.picking", "picking_type_id.warehouse_id",
            ("picking_type_code", "state", "carrier_tracking_ref", "name")),
    Watched("purchase.order", "picking_type_id.warehouse_id", ("state", "name")),
    Watched("stock.quant", "location_id.warehouse_id", ("product_id", "quantity", "location_id")),
    Watched("stock.warehouse.orderpoint", "warehouse_id", ("product_id", "product_min_qty")),
)}


def follow_ups(site: str, model: str, record: Mapping[str, Any]) -> list[FollowUp]:
    rid = int(record["id"])
    if model == "stock.picking":
        if (record.get("picking_type_code") == "outgoing" and record.get("state") == "assigned"
                and not record.get("carrier_tracking_ref")):
            return [FollowUp("siteops.shipping.create_shipment", (site, rid), "outgoing picking ready, no label")]
        return []
    if model == "purchase.order":
        if record.get("state") in ("purchase", "done"):
            return [FollowUp("siteops.edi.dispatch_po", (site, rid), "purchase order confirmed")]
        return []
    if model in ("stock.quant", "stock.warehouse.orderpoint"):
        product = record.get("product_id")
        pid = product[0] if isinstance(product, list | tuple) and product else product
        if isinstance(pid, int) and not isinstance(pid, bool):
            return [FollowUp("siteops.replenish.check_product", (site, pid), "stock level changed")]
        return []
    return []
