"""Known drift planted on the simulators, for the reconciliation tests: what each dry run
must report, exactly."""

from __future__ import annotations

from typing import Any

from siteops.sim.carrier import CarrierSim

SITE = "NORTH"


def buy_label(carrier: CarrierSim, reference: str) -> str:
    """A label bought at the carrier for `reference`, and NOT written back to Odoo (the drift
    a crash between the carrier's answer and the write-back leaves)."""
    from siteops.connectors.carriers.easypost import no_retry_client

    client = no_retry_client("EZTK_drift", carrier.api_base, 10)
    addr = {"name": "X", "street1": "1 Main St", "city": "Oslo", "zip": "0150", "country": "NO"}
    shipment = client.shipment.create(reference=reference, to_address=addr, from_address=addr,
                                      parcel={"weight": 10.0})
    bought = client.shipment.buy(shipment.id, rate={"id": shipment.rates[0].id})
    return str(bought.tracking_code)


def plant_shipments(carrier: CarrierSim, ready: list[tuple[int, str]]) -> dict[str, Any]:
    """Two pickings with a label and no tracking reference; one label naming no picking."""
    missing = ready[:2]
    codes = {pid: buy_label(carrier, name) for pid, name in missing}
    buy_label(carrier, f"{SITE}/OUT/99999")
    expected = set()
    for _pid, name in missing:
        expected |= {("stock.picking", name, "write_tracking_ref"), ("siteops.shipment", name, "record_label")}
    expected.add(("carrier.shipment", f"{SITE}/OUT/99999", "label_without_picking"))
    return {"codes": codes, "expected": expected}


def plant_stock(odoo: Any) -> set[tuple[str, str, str]]:
    """Every orderpoint of the site satisfied, then two products pushed under their minimum
    with nothing open for them: one the central warehouse can spare (transfer), one it cannot
    (purchase from its preferred supplier). Read through the replenishment reader itself."""
    from siteops.config.sites import get_registry
    from siteops.services.replenishment import Replenishment

    reader = Replenishment(odoo, get_registry().get(SITE))
    ops = odoo.search_read("stock.warehouse.orderpoint", reader.domain(), ["id", "product_id"], order="id")
    odoo.write("stock.warehouse.orderpoint", [o["id"] for o in ops], {"product_min_qty": 0.0})
    products = [o["product_id"][0] for o in ops]
    here = reader.quantities(int(reader.wh["id"]), products)
    central = reader.central_stock(products)
    opened = reader.open_products(products)
    suppliers, _ = reader.suppliers(products)
    transfer = purchase = None
    for o in ops:
        pid = o["product_id"][0]
        if pid in opened or pid not in suppliers:
            continue
        qty = here.get(pid, (0.0, 0.0))[0]
        spare = central[pid].free_qty - central[pid].min_qty if pid in central else 0.0
        if transfer is None and spare >= 20:
            transfer = o, qty, 10.0  # need 10: the central warehouse covers it
        elif purchase is None and transfer is not None and o is not transfer[0]:
            purchase = o, qty, max(spare, 0.0) + 50.0  # need more than the central warehouse can spare
        if transfer and purchase:
            break
    assert transfer and purchase, "the demo data has no product for a planted transfer and purchase"
    out = set()
    for (o, qty, need), change in ((transfer, "propose_transfer"), (purchase, "propose_purchase")):
        odoo.write("stock.warehouse.orderpoint", [o["id"]], {"product_min_qty": qty + 1, "product_max_qty": qty + need,
                                                             "qty_multiple": 1.0})
        out.add(("product.product", o["product_id"][1], change))
    return out


def plant_findings(odoo: Any) -> set[tuple[str, str, str]]:
    """The site's real aging-transfer findings (a scan), plus one that no longer holds."""
    from siteops.rules.findings import Observation, Plan
    from siteops.services.scans import scan_once
    from siteops.store import findings

    scan_once(SITE, "aging_transfers", odoo)
    held = {f.record_id for f in findings.search(site=SITE, kind="aging_transfers", status="open")}
    wh = odoo.search("stock.warehouse", [("code", "=", SITE)])[0]
    done = odoo.search_read("stock.picking", [("picking_type_id.warehouse_id", "=", wh), ("state", "=", "done"),
                                              ("picking_type_code", "=", "internal")], ["id", "name"], limit=5)
    pick = next(p for p in done if p["id"] not in held)
    obs = Observation(site=SITE, kind="aging_transfers", rule="aging_transfer", model="stock.picking",
                      record_id=int(pick["id"]), record_name=str(pick["name"]), severity=1,
                      title=f"{pick['name']} (planted: it is done)", rule_version="1", params={})
    findings.apply(Plan(open=[obs]))
    return {("siteops.finding", str(pick["name"]), "resolve_finding")}


def seen(report: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(c["model"], c["record"], c["change"]) for c in report["changes"]}


def confirmed_po(odoo: Any, vendor_ref: str) -> int:
    vendor = odoo.search("res.partner", [("ref", "=", vendor_ref)], limit=1)[0]
    ptype = odoo.search("stock.picking.type", [("warehouse_id.code", "=", SITE), ("code", "=", "incoming")],
                        limit=1)[0]
    products = odoo.search("product.product", [], limit=2)
    po_id = int(odoo.create("purchase.order", {
        "partner_id": vendor, "picking_type_id": ptype, "company_id": 1, "date_order": "2026-11-30 09:00:00",
        "date_planned": "2026-12-10 12:00:00",
        "order_line": [(0, 0, {"product_id": p, "name": f"item {i}", "product_qty": 10.0 + i, "price_unit": 4.5,
                               "date_planned": "2026-12-10 12:00:00"}) for i, p in enumerate(products)]}))
    odoo.call("purchase.order", "button_confirm", [po_id])
    return po_id


def plant_po_acks(odoo: Any) -> set[tuple[str, str, str]]:
    """Every confirmed EDI order of the site sent and answered first (a clean baseline); then
    one order never sent, one sent and past its deadline without an answer, and one whose
    855 waits in the mailbox, never applied."""
    import datetime as dt

    from siteops.config.edi import get_edi
    from siteops.config.settings import get_settings
    from siteops.services import edi
    from siteops.sim.edi import Supplier
    from siteops.store import exchanges, operations
    from siteops.store.models import utcnow

    def once(key: str, effect: Any, check: Any = None, on_unknown: Any = None) -> Any:
        return operations.run_once(key, effect, check=check, on_unknown=on_unknown or "repeat", site=SITE)

    acme = get_edi().get("ACME")
    supplier = Supplier(get_edi(), acme, get_settings().var / "edi" / "ACME")
    for po_id in edi.orders_to_send(SITE, odoo=odoo):
        edi.dispatch_po(SITE, po_id, odoo=odoo, once=once)
    late, waiting = confirmed_po(odoo, "V0001"), confirmed_po(odoo, "V0001")
    for po_id in (late, waiting):
        edi.dispatch_po(SITE, po_id, odoo=odoo, once=once)
    x = exchanges.find_outbound_for_po(late)
    assert x is not None
    supplier.poll()  # answers everything in its outbox, `late` included...
    edi.poll_inbound(SITE, odoo=odoo, once=once)
    exchanges.update_values(x.id, responded_at=None, ack_due_at=utcnow() - dt.timedelta(hours=1))  # ...but not really
    pending = confirmed_po(odoo, "V0001")
    edi.dispatch_po(SITE, pending, odoo=odoo, once=once)
    supplier.poll()  # its 855 (and 997, 856) now wait in our inbox
    never = confirmed_po(odoo, "V0002")
    names = {int(r["id"]): r["name"] for r in odoo.read("purchase.order", [late, pending, never], ["name"])}
    return {("purchase.order", names[never], "po_never_sent"), ("purchase.order", names[late], "po_not_acknowledged"),
            ("purchase.order", names[pending], "ack_not_applied")}
