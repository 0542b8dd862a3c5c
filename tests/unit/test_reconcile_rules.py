"""The reconciliation rules, pure: each kind of drift found exactly, and nothing else."""

from __future__ import annotations

import pytest

from siteops.rules import reconcile as r

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


@pytest.mark.parametrize("on_hand,minimum,maximum,multiple,qty", [
    (3, 10, 40, 1, 37), (3, 10, 40, 5, 40), (3, 10, 38, 5, 35), (10, 10, 40, 1, 0), (0, 10, 5, 4, 12),
])
def test_quantities_go_up_to_the_maximum_in_multiples(on_hand: float, minimum: float, maximum: float,
                                                       multiple: float, qty: float) -> None:
    assert r.order_quantity(on_hand, minimum, maximum, multiple) == qty


OP = {"name": "OP/1", "product_id": [5, "Widget"], "product_min_qty": 10.0, "product_max_qty": 30.0,
      "qty_multiple": 1.0}
VENDOR = {"id": 9, "name": "Acme"}


def test_the_central_warehouse_first_when_it_can_spare_the_whole_quantity() -> None:
    item = r.replenishment(OP, on_hand=4, open_incoming=0, central_free=40, central_minimum=14, is_central=False,
                           supplier=VENDOR)
    assert item is not None and item.change == "propose_transfer" and item.detail["quantity"] == 26


def test_a_purchase_when_the_central_warehouse_would_drop_under_its_own_minimum() -> None:
    item = r.replenishment(OP, on_hand=4, open_incoming=0, central_free=40, central_minimum=15, is_central=False,
                           supplier=VENDOR)
    assert item is not None and item.change == "propose_purchase" and item.detail["supplier_id"] == 9
    assert item.applies
    central = r.replenishment(OP, on_hand=4, open_incoming=0, central_free=999, central_minimum=0, is_central=True,
                              supplier=None)
    assert central is not None and central.change == "propose_purchase" and not central.applies  # no supplier


def test_nothing_when_stock_suffices_or_replenishment_is_on_its_way() -> None:
    assert r.replenishment(OP, on_hand=10, open_incoming=0, central_free=99, central_minimum=0, is_central=False,
                           supplier=VENDOR) is None
    assert r.replenishment(OP, on_hand=2, open_incoming=5, central_free=99, central_minimum=0, is_central=False,
                           supplier=VENDOR) is None


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
