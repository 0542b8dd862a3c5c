"""The reconciliation rules, pure: each kind of drift found exactly, and nothing else."""

from __future__ import annotations

import datetime as dt

from siteops.rules import reconcile as r
from siteops.rules.replenish import CentralStock, Orderpoint, Supplier, propose_replenishment

PICKING = {"id": 7, "name": "NORTH/OUT/00007", "carrier_tracking_ref": False}
LABEL = {"shipment_id": "shp_1", "tracking_code": "9400A", "status": "pre_transit"}


def changes(items: list[r.Item]) -> list[tuple[str, str, bool]]:
    return [(i.model, i.change, i.applies) for i in items]


def test_a_label_not_written_back_is_written_and_recorded() -> None:
    assert changes(r.plan_shipment(PICKING, LABEL, None)) == [
        ("stock.picking", "write_tracking_ref", True), ("siteops.shipment", "record_label", True)]


def test_a_picking_in_step_with_its_label_needs_nothing() -> None:
    synced = PICKING | {"carrier_tracking_ref": "9400A"}
    assert r.plan_shipment(synced, LABEL, {"tracking_code": "9400A", "status": "pre_transit"}) == []
    assert r.plan_shipment(PICKING, None, None) == []  # no label at the carrier: ship_ready's business
    assert r.plan_shipment(synced, LABEL | {"status": "unknown"}, {"tracking_code": "9400A",
                                                                    "status": "in_transit"}) == []


def test_a_stale_status_is_brought_up_to_date() -> None:
    synced = PICKING | {"carrier_tracking_ref": "9400A"}
    items = r.plan_shipment(synced, LABEL | {"status": "delivered"}, {"tracking_code": "9400A",
                                                                      "status": "in_transit"})
    assert changes(items) == [("siteops.shipment", "update_status", True)]
    assert items[0].detail["from"] == "in_transit" and items[0].detail["to"] == "delivered"


def test_another_tracking_reference_is_reported_never_overwritten() -> None:
    items = r.plan_shipment(PICKING | {"carrier_tracking_ref": "MANUAL-1"}, LABEL, None)
    assert changes(items) == [("stock.picking", "conflicting_tracking_ref", False)]


def test_labels_without_a_picking_of_the_site_are_reported() -> None:
    labels = [{"reference": "NORTH/OUT/00007"}, {"reference": "NORTH/OUT/99999", "tracking_code": "X"},
              {"reference": "SOUTH/OUT/00001"}]
    items = r.labels_without_picking(labels, "NORTH/", {"NORTH/OUT/00007"})
    assert [(i.record, i.change, i.applies) for i in items] == [("NORTH/OUT/99999", "label_without_picking", False)]


def finding(fid: int, kind: str, rule: str, record: int) -> dict[str, object]:
    return {"id": fid, "kind": kind, "rule": rule, "record_id": record, "record_name": f"R{record}",
            "status": "open", "fingerprint": f"NORTH:{kind}:{rule}:stock.picking:{record}"}


def test_findings_that_no_longer_hold_are_resolved_and_the_rest_kept() -> None:
    fs = [finding(1, "aging_transfers", "aging_transfer", 10), finding(2, "aging_transfers", "aging_transfer", 11),
          finding(3, "shipment_exceptions", "carrier_exception", 12),
          finding(4, "shipment_exceptions", "carrier_return", 13), finding(5, "po_exceptions", "x", 14)]
    seen = {"aging_transfers": {"NORTH:aging_transfers:aging_transfer:stock.picking:10"}}
    items = r.plan_findings(fs, seen, {12: "delivered", 13: "delivered"})
    # 11 is no longer seen; the exception ended with the delivery; a return stays; unknown kinds stay.
    assert [(i.record_id, i.change) for i in items] == [(2, "resolve_finding"), (3, "resolve_finding")]


TODAY = dt.date(2026, 12, 1)
WIDGET = Orderpoint(5, 10.0, 30.0, 1.0, 4.0, unit_cost=2.0, name="OP/1", product_name="Widget")


def stock_items(central: CentralStock | None, suppliers: list[Supplier], *, site: str = "NORTH",
                open_products: dict[int, str] | None = None) -> list[r.Item]:
    """What reconcile plans for one short product: the replenishment rule's answer, as items."""
    proposals, skipped = propose_replenishment(site, [WIDGET], central_site="CW",
                                               central={5: central} if central else {}, suppliers={5: suppliers},
                                               open_products=open_products, lead_time_days=2, today=TODAY)
    return r.plan_stock(proposals, skipped, {5: WIDGET}, {5: central} if central else {}, {9: "Acme", 7: "Bolt"})


def test_the_central_warehouse_first_when_it_can_spare_the_whole_quantity() -> None:
    (item,) = stock_items(CentralStock(40, 14), [Supplier(9)])
    assert (item.change, item.applies, item.record) == ("propose_transfer", True, "Widget")
    assert item.detail["quantity"] == 26 and item.detail["from"] == "CW" and item.detail["orderpoint"] == "OP/1"
    assert item.key == "product.product:5:propose_transfer"


def test_a_purchase_from_the_lowest_sequence_supplier_when_the_central_would_drop_under_its_minimum() -> None:
    (item,) = stock_items(CentralStock(40, 15), [Supplier(7, sequence=2), Supplier(9, sequence=1, price=1.5)])
    assert (item.change, item.applies) == ("propose_purchase", True)
    assert (item.detail["supplier_id"], item.detail["supplier"], item.detail["amount"]) == (9, "Acme", 39.0)
    # The central site itself always buys; without a supplier the proposal is reported only.
    (central,) = stock_items(CentralStock(999), [], site="CW")
    assert (central.change, central.applies, central.detail["supplier_id"]) == ("propose_purchase", False, None)


def test_nothing_when_stock_suffices_or_something_is_already_open() -> None:
    assert stock_items(CentralStock(40), [Supplier(9)], open_products={5: "purchase order P00042 is draft"}) == []
    enough = Orderpoint(5, 10.0, 30.0, 1.0, 10.0)
    assert r.plan_stock(*propose_replenishment("NORTH", [enough], central_site="CW", central={}, suppliers={},
                                               today=TODAY), {5: enough}, {}, {}) == []


def test_po_acks_never_sent_not_acknowledged_and_in_step() -> None:
    po = {"id": 3, "name": "P00003", "state": "purchase"}
    assert r.plan_po_ack(po, None, edi_partner=True).change == "po_never_sent"  # type: ignore[union-attr]
    late = r.plan_po_ack(po, {"id": 1, "state": "sent", "ack_received": False, "ack_applied": True},
                         edi_partner=True)
    assert late is not None and late.change == "po_not_acknowledged" and not late.applies
    assert r.plan_po_ack(po, {"id": 1, "state": "acknowledged", "ack_received": True, "ack_applied": True},
                         edi_partner=True) is None
    assert r.plan_po_ack(po, None, edi_partner=False) is None


def test_items_survive_the_checkpoint_and_counts_are_by_change_and_outcome() -> None:
    item = r.plan_shipment(PICKING, LABEL, None)[0]
    assert r.Item.from_dict(item.as_dict()) == item
    assert item.key == "stock.picking:7:write_tracking_ref"
    assert r.counts([{"change": "a", "applies": True}, {"change": "a", "outcome": "changed"},
                     {"change": "b", "applies": False}]) == {"a:changed": 1, "a:would_change": 1, "b:reported": 1}
