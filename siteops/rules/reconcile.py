"""Reconciliation rules, pure: what has drifted between Odoo, a connector and the store, and
what a reconciliation job would do about it.

Each function takes records as the connectors and the store return them and returns
`Item`s: one per record and change. An item either `applies` (a real run makes the
change: write a tracking reference back, bring a status up to date, resolve a finding)
or only reports (a label without a picking, a proposal for a person to decide). The
dry run and the real run call the same functions; only the apply step differs.

Stock has no rule of its own: `plan_stock` turns the proposals of the one replenishment
rule (`siteops.rules.replenish`, which the approvals flow calls too) into items.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from siteops.rules.replenish import NO_SUPPLIER, TRANSFER, CentralStock, Orderpoint, Proposal, Skip

#: 2: stock proposals come from rules.replenish (supplierinfo suppliers, one idea of "open").
RULE_VERSION = "2"
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


# --- stock (the replenishment rule's proposals, as items) -------------------------------

def plan_stock(proposals: Iterable[Proposal], skipped: Iterable[Skip], orderpoints: Mapping[int, Orderpoint],
               central: Mapping[int, CentralStock], partners: Mapping[int, str]) -> list[Item]:
    """`rules.replenish.propose_replenishment`'s answer (the one replenishment rule, which
    the approvals flow calls too) as reconcile items: a proposal applies (a real run drafts
    it); a product short with no supplier is reported only (a person has to choose one); a
    product already open (a request, a transfer or RFQ on its way) needs nothing."""
    items: list[Item] = []

    def base(pid: int, qty: float) -> tuple[str, dict[str, Any]]:
        op = orderpoints.get(pid)
        stock = central.get(pid)
        name = (op.product_name if op else "") or str(pid)
        return name, {"orderpoint": op.name if op else None, "product_id": pid, "product": name,
                      "on_hand": op.available if op else None, "min": op.min_qty if op else None,
                      "max": op.max_qty if op else None, "quantity": qty, "rule_version": RULE_VERSION,
                      "central_free": stock.free_qty if stock else 0.0, "central_min": stock.min_qty if stock else 0.0}

    for p in proposals:
        name, detail = base(p.product_id, p.quantity)
        detail |= {"amount": p.amount, "scheduled": p.scheduled.isoformat(), "why": p.why}
        if p.kind == TRANSFER:
            items.append(Item("product.product", p.product_id, name, "propose_transfer",
                              {**detail, "from": p.source_site}))
        else:
            items.append(Item("product.product", p.product_id, name, "propose_purchase",
                              {**detail, "supplier_id": p.partner_id, "supplier": partners.get(p.partner_id or 0)}))
    for s in skipped:
        if s.reason == NO_SUPPLIER:
            name, detail = base(s.product_id, s.quantity)
            items.append(Item("product.product", s.product_id, name, "propose_purchase",
                              {**detail, "supplier_id": None, "supplier": None, "why": s.why}, applies=False))
    return items


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
