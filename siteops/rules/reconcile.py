"""Reconciliation rules, pure: what has drifted between Odoo, a connector and the store, and
what a reconciliation job would do about it.

Each function takes records as the connectors and the store return them and returns
`Item`s: one per record and change. An item either `applies` (a real run makes the
change: write a tracking reference back, bring a status up to date, resolve a finding)
or only reports (a label without a picking, a proposal for a person to decide). The
dry run and the real run call the same functions; only the apply step differs.

The replenishment rule here (`replenishment`) has the semantics of the approvals issue's
rule (siteops/rules/replenish.py on its branch): transfer from the central warehouse
before any purchase. The two should be merged into one when both have landed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

RULE_VERSION = "1"
#: The kinds of reconciliation, in the order the CLI lists them.
KINDS = ("shipments", "po-acks", "stock", "findings")


@dataclass(frozen=True)
class Item:
    """One record and what reconciliation does (or would do) to it."""

    model: str
    record_id: int | None
    record: str
    change: str
    detail: Mapping[str, Any] = field(default_factory=dict)
    #: True when a real run makes this change; False: reported only.
    applies: bool = True

    @property
    def key(self) -> str:
        """Stable per record and change: the audit's and the operation's key within a job."""
        return f"{self.model}:{self.record_id if self.record_id is not None else self.record}:{self.change}"

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "record_id": self.record_id, "record": self.record, "change": self.change,
                "detail": dict(self.detail), "applies": self.applies}

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> Item:
        return Item(model=str(d["model"]), record_id=d.get("record_id"), record=str(d["record"]),
                    change=str(d["change"]), detail=dict(d.get("detail") or {}), applies=bool(d.get("applies")))


# --- shipments -----------------------------------------------------------------------

SHIPMENT_MODEL = "siteops.shipment"


def plan_shipment(picking: Mapping[str, Any], label: Mapping[str, Any] | None,
                  row: Mapping[str, Any] | None) -> list[Item]:
    """One outgoing picking against the label the carrier holds for it (by reference) and
    siteops's shipment row.

    `label`: the carrier's bought shipment for the picking's name (shipment_id,
    tracking_code, tracker_id, status as the neutral TrackStatus), or None.
    `row`: the store's shipment (tracking_code, status), or None.
    """
    if label is None or not label.get("tracking_code"):
        return []
    pid, name, code = int(picking["id"]), str(picking["name"]), str(label["tracking_code"])
    current = picking.get("carrier_tracking_ref") or None
    items: list[Item] = []
    if current is None:
        items.append(Item("stock.picking", pid, name, "write_tracking_ref", {"tracking_code": code}))
    elif current != code:
        # Someone wrote another reference (a manual label?): a person decides, we never overwrite.
        return [Item("stock.picking", pid, name, "conflicting_tracking_ref",
                     {"odoo": current, "carrier": code}, applies=False)]
    status = str(label.get("status") or "unknown")
    if row is None:
        items.append(Item(SHIPMENT_MODEL, pid, name, "record_label",
                          {"tracking_code": code, "shipment_id": label.get("shipment_id"), "status": status}))
    elif str(row.get("tracking_code")) == code and status not in ("unknown", str(row.get("status"))):
        items.append(Item(SHIPMENT_MODEL, pid, name, "update_status", {"from": row.get("status"), "to": status,
                                                                        "tracking_code": code}))
    return items


def labels_without_picking(labels: Iterable[Mapping[str, Any]], prefix: str,
                           picking_names: Iterable[str]) -> list[Item]:
    """Bought labels whose reference looks like one of the site's pickings (`prefix`) but
    names none: money spent on a parcel nobody ships. Reported, never changed."""
    known = set(picking_names)
    return [Item("carrier.shipment", None, str(lb["reference"]), "label_without_picking",
                 {"tracking_code": lb.get("tracking_code"), "shipment_id": lb.get("shipment_id")}, applies=False)
            for lb in labels
            if str(lb.get("reference") or "").startswith(prefix) and str(lb["reference"]) not in known]


# --- findings ------------------------------------------------------------------------

def plan_findings(findings: Iterable[Mapping[str, Any]], seen: Mapping[str, set[str]],
                  shipment_status: Mapping[int, str]) -> list[Item]:
    """Active findings against what the scan rules see in Odoo now.

    `seen`: per scan kind, the fingerprints a complete read of current Odoo data raises;
    a finding of that kind whose fingerprint is not among them no longer holds.
    `shipment_status`: the current tracking status per picking, for carrier findings
    (a delivered parcel ends its exception; nothing ends a return but a person).
    Findings of a kind neither covers are left alone.
    """
    from siteops.rules import shipping

    items = []
    for f in findings:
        kind, rule, fp = str(f["kind"]), str(f["rule"]), str(f["fingerprint"])
        why: str | None = None
        if kind in seen:
            if fp not in seen[kind]:
                why = f"the {kind} rules no longer see it in Odoo"
        elif kind == shipping.KIND:
            status = shipment_status.get(int(f["record_id"]))
            if status is not None and shipping.resolves(status, rule):
                why = f"the parcel is {status}"
        if why:
            items.append(Item("siteops.finding", int(f["id"]), str(f.get("record_name") or fp), "resolve_finding",
                              {"fingerprint": fp, "status": f.get("status"), "why": why}))
    return items


# --- stock (the replenishment rule) ----------------------------------------------------

def order_quantity(on_hand: float, minimum: float, maximum: float, multiple: float) -> float:
    """Up to the orderpoint's maximum, rounded up to its multiple (0 when not below minimum)."""
    if on_hand >= minimum:
        return 0.0
    need = max(maximum, minimum) - on_hand
    step = multiple if multiple and multiple > 0 else 1.0
    return float(math.ceil(round(need / step, 9)) * step)


def replenishment(orderpoint: Mapping[str, Any], *, on_hand: float, open_incoming: float, central_free: float,
                  central_minimum: float, is_central: bool, supplier: Mapping[str, Any] | None) -> Item | None:
    """A product under its orderpoint minimum with no open replenishment -> a proposal.

    Transfer from the central warehouse when its free quantity less its own minimum covers
    the whole quantity; otherwise purchase from the preferred supplier. A product with
    replenishment already on its way (an open receipt, transfer or RFQ) needs nothing.
    """
    minimum, maximum = float(orderpoint["product_min_qty"]), float(orderpoint["product_max_qty"])
    if on_hand >= minimum or open_incoming > 0:
        return None
    qty = order_quantity(on_hand, minimum, maximum, float(orderpoint.get("qty_multiple") or 1.0))
    product = orderpoint["product_id"]
    pid = int(product[0]) if isinstance(product, list | tuple) else int(product)
    pname = str(product[1]) if isinstance(product, list | tuple) and len(product) > 1 else str(pid)
    base = {"orderpoint": orderpoint.get("name"), "product_id": pid, "product": pname, "on_hand": on_hand,
            "min": minimum, "max": maximum, "quantity": qty, "rule_version": RULE_VERSION}
    spare = central_free - central_minimum
    if not is_central and spare >= qty:
        return Item("product.product", pid, pname, "propose_transfer",
                    {**base, "from": "central", "central_free": central_free, "central_min": central_minimum})
    # Without a supplier the proposal is reported only: a person has to choose one.
    return Item("product.product", pid, pname, "propose_purchase",
                {**base, "supplier_id": supplier.get("id") if supplier else None,
                 "supplier": supplier.get("name") if supplier else None,
                 "central_free": central_free, "central_min": central_minimum}, applies=supplier is not None)


# --- po-acks -------------------------------------------------------------------------

def plan_po_ack(order: Mapping[str, Any], exchange: Mapping[str, Any] | None, *, edi_partner: bool) -> Item | None:
    """A confirmed purchase order against its EDI exchange.

    `exchange`: the order's 850/ORDERS exchange once sent (id, state, sent_at,
    ack_received: answered, refused, or still within its deadline; ack_applied), or None.
    A real run sends an order never sent (through the EDI connector's own once-only
    dispatch) and applies an acknowledgment not applied; a sent order never acknowledged
    is reported only: sending it again would give the partner a duplicate order.
    """
    if not edi_partner:
        return None
    pid, name = int(order["id"]), str(order["name"])
    if exchange is None:
        return Item("purchase.order", pid, name, "po_never_sent", {"state": order.get("state")})
    state = str(exchange.get("state") or "")
    if not exchange.get("ack_received"):
        return Item("purchase.order", pid, name, "po_not_acknowledged",
                    {"exchange": exchange.get("id"), "state": state, "sent_at": exchange.get("sent_at")},
                    applies=False)
    if not exchange.get("ack_applied"):
        return Item("purchase.order", pid, name, "ack_not_applied",
                    {"exchange": exchange.get("id"), "ack": exchange.get("ack")})
    return None


def counts(items: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Counts by change and outcome, for the report."""
    out: dict[str, int] = {}
    for it in items:
        key = f"{it['change']}:{it.get('outcome', 'would_change' if it.get('applies') else 'reported')}"
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))
