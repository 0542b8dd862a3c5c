"""EDI orchestration: send confirmed orders, take in what partners send, keep the deadlines.

Tasks call these with a `once(key, effect, check=...)` (the task's `idempotent_call`),
an Odoo client and a transport; the documents themselves are built and read by
`siteops.connectors.edi`. Policy lives here: which orders go out, what an
acknowledgment changes in Odoo, what becomes a finding, what is quarantined.

Inbound, file by file (a bad file never stops the batch):
  read + check + map + route (pure) -> refused? quarantine/ with a reason file, an
  exchange in state error and a finding -> for another site? leave it for that site's
  poll -> already applied (same checksum)? archive, change nothing -> claim the exchange
  (unique checksum: one worker wins) -> apply to Odoo -> answer 997/CONTRL -> archive.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from siteops.config.edi import EdiConfig, Partner, get_edi
from siteops.config.sites import get_registry
from siteops.connectors.edi import edifact, edifact_docs, x12, x12_docs
from siteops.connectors.edi.errors import EdiError
from siteops.connectors.edi.inbound import Inbound, read, rejection
from siteops.connectors.edi.model import Acknowledgment, FunctionalAck, PoLine, PurchaseOrder, ShipNotice
from siteops.connectors.edi.transport import Transport, open_transport
from siteops.connectors.errors import PermanentError
from siteops.rules.findings import Observation, Plan
from siteops.store import exchanges as xstore
from siteops.store import findings as fstore
from siteops.store.exchanges import ExchangeState
from siteops.store.models import utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")
Once = Callable[..., Any]
PO_KIND = "po_exceptions"
QUARANTINE_KIND = "edi_quarantine"
RULE_VERSION = "1"
STALE_CLAIM = dt.timedelta(minutes=10)


def _odoo_dt(value: dt.date) -> str:
    return f"{value.isoformat()} 12:00:00"


def raise_finding(site: str, kind: str, rule: str, model: str, record_id: int, record_name: str, severity: int,
                  title: str, details: dict[str, Any]) -> int | None:
    """Open a finding unless one is already active for the record and rule; its id when opened."""
    obs = Observation(site=site, kind=kind, rule=rule, model=model, record_id=record_id, record_name=record_name,
                      severity=severity, title=title, rule_version=RULE_VERSION, params={}, details=details)
    if any(k.fingerprint == obs.fingerprint for k in fstore.active(site, kind)):
        return None
    # The alert ledger of the scans: debts written with the finding, published after the
    # commit, swept if we die in between. A quarantined file has no Odoo record to alert
    # on, so it owes the webhook only.
    from siteops.services.scans import alert_channels, publish_owed

    channels = tuple(c for c in alert_channels() if kind == PO_KIND or c != "odoo")
    applied = fstore.apply(Plan(open=[obs]), channels=channels)
    publish_owed(site, applied, channels)
    return applied.opened[0] if applied.opened else None


# -- outbound: purchase orders -------------------------------------------------------------

def _warehouse_site(odoo: Any, picking_type: Any) -> str | None:
    pt_id = picking_type[0] if isinstance(picking_type, list | tuple) else picking_type
    if not pt_id:
        return None
    pts = odoo.read("stock.picking.type", [int(pt_id)], ["warehouse_id"])
    wh = pts[0]["warehouse_id"] if pts else None
    wh_id = wh[0] if isinstance(wh, list | tuple) else wh
    if not wh_id:
        return None
    code = odoo.read("stock.warehouse", [int(wh_id)], ["code"])[0]["code"]
    return next((s.code for s in get_registry() if s.odoo_warehouse == code), None)


def purchase_order(odoo: Any, po_id: int, site: str, config: EdiConfig | None = None
                   ) -> tuple[PurchaseOrder | None, Partner | None, dict[str, Any], str]:
    """The neutral order for Odoo's purchase.order `po_id`, or (None, ..., why not)."""
    config = config or get_edi()
    rows = odoo.read("purchase.order", [po_id], ["name", "state", "partner_id", "date_order", "date_planned",
                                                 "picking_type_id", "order_line"])
    if not rows:
        raise PermanentError(f"purchase.order {po_id} does not exist", system="odoo", operation="read")
    po = rows[0]
    vendor = po["partner_id"][0] if isinstance(po["partner_id"], list | tuple) else po["partner_id"]
    ref = (odoo.read("res.partner", [int(vendor)], ["ref"]) or [{}])[0].get("ref") or ""
    partner = config.for_vendor(ref)
    if partner is None:
        return None, None, po, f"vendor {ref or vendor} is no EDI partner"
    if po["state"] not in ("purchase", "done"):
        return None, partner, po, f"order is {po['state']}, not confirmed"
    where = _warehouse_site(odoo, po["picking_type_id"])
    if where != site:
        raise PermanentError(f"purchase order {po['name']} delivers to site {where}, not {site}", system="edi",
                             operation="dispatch")
    ship_to = partner.ship_to.get(site)
    if ship_to is None:
        return None, partner, po, f"site {site} has no ship-to code at partner {partner.id}"
    uom_field = odoo.field("purchase.order.line", "product_uom") if hasattr(odoo, "field") else "product_uom"
    lines = odoo.read("purchase.order.line", list(po["order_line"]),
                      ["product_id", "product_qty", "price_unit", "name", uom_field])
    pids = sorted({int(line["product_id"][0]) for line in lines if line.get("product_id")})
    products = {int(p["id"]): p for p in odoo.read("product.product", pids, ["default_code", "barcode"])}
    uom = "EA" if partner.standard == "x12" else "PCE"
    po_lines = []
    for line in sorted(lines, key=lambda r: int(r["id"])):
        product = products.get(int(line["product_id"][0])) if line.get("product_id") else None
        po_lines.append(PoLine(line_no=str(line["id"]), quantity=Decimal(str(line["product_qty"])), uom=uom,
                               price=Decimal(str(line["price_unit"])).quantize(Decimal("0.01")),
                               buyer_part=(product or {}).get("default_code") or "",
                               gtin=(product or {}).get("barcode") or "", description=str(line.get("name") or "")))
    order_date = dt.date.fromisoformat(str(po["date_order"])[:10])
    planned = dt.date.fromisoformat(str(po["date_planned"])[:10]) if po.get("date_planned") else None
    return (PurchaseOrder(number=po["name"], date=order_date, ship_to=ship_to, lines=tuple(po_lines),
                          requested_delivery=planned, buyer_name=get_registry().get(site).name),
            partner, po, "")


def render_order(config: EdiConfig, partner: Partner, order: PurchaseOrder, icn: int, gcn: int,
                 when: dt.datetime) -> tuple[str, str]:
    """(document type, file text) of our order in the partner's standard."""
    qualifier, ours = config.our_party(partner)
    if partner.standard == "x12":
        return "850", x12.render(sender=x12.Party(qualifier, ours),
                                 receiver=x12.Party(partner.interchange_qualifier, partner.interchange_id),
                                 control=icn, group_control=gcn, functional_id="PO",
                                 sets=[("850", "0001", x12_docs.write_850(order))], when=when, test=config.test)
    return "ORDERS", edifact.render(sender=(ours, qualifier), recipient=(partner.interchange_id,
                                                                         partner.interchange_qualifier),
                                    control=icn, when=when, ack_requested=partner.functional_ack, test=config.test,
                                    messages=[("1", edifact_docs.S009["ORDERS"], edifact_docs.write_orders(order))])


def _marker(text: str) -> str:
    return f"[siteops edi {text}]"


def _note_check(odoo: Any, model: str, res_id: int, marker: str) -> Callable[[], int | None]:
    def check() -> int | None:
        rows = odoo.search_read("mail.message", [("model", "=", model), ("res_id", "=", res_id),
                                                 ("body", "ilike", marker)], ["id"], limit=1)
        return int(rows[0]["id"]) if rows else None
    return check


def dispatch_po(site: str, po_id: int, *, odoo: Any, once: Once, transport: Transport | None = None,
                config: EdiConfig | None = None, now: dt.datetime | None = None) -> dict[str, Any]:
    config = config or get_edi()
    order, partner, po, why = purchase_order(odoo, po_id, site, config)
    if order is None or partner is None:
        return {"skipped": why, "po": po.get("name")}
    transport = transport or open_transport(partner)

    def already_sent() -> int | None:
        x = xstore.find_outbound(partner.id, doc_types=("850", "ORDERS"), odoo_id=po_id)
        if x is None:
            return None
        if x.state == ExchangeState.NEW:
            if not transport.sent(x.filename):
                return None
            xstore.set_state(x.id, ExchangeState.SENT, expect=ExchangeState.NEW,
                             ack_due_at=utcnow() + dt.timedelta(hours=partner.ack_deadline_hours))
        return x.id

    def send() -> int:
        # A row left 'new' by an attempt that died before sending keeps its numbers and file.
        x = xstore.find_outbound(partner.id, doc_types=("850", "ORDERS"), odoo_id=po_id)
        if x is None:
            when = now or utcnow()
            icn = xstore.allocate(partner.id, "interchange", f"order {order.number}")
            gcn = xstore.allocate(partner.id, "group", f"order {order.number}")
            doc_type, text = render_order(config, partner, order, icn, gcn, when)
            data = text.encode("ascii" if partner.standard == "x12" else "latin-1", errors="replace")
            x = xstore.add(direction="out", partner=partner.id, site=site, standard=partner.standard,
                           doc_type=doc_type, interchange_control=f"{icn:09d}" if partner.standard == "x12" else
                           str(icn), group_control=str(gcn), set_control="0001" if doc_type == "850" else "1",
                           filename=f"{doc_type}_{order.number}_{icn:09d}.edi", checksum=_sha(data),
                           odoo_model="purchase.order", odoo_id=po_id, business_key=order.number,
                           details={"payload": text, "lines": len(order.lines)})
            if x is None:
                raise PermanentError(f"an identical order file for {order.number} is already recorded",
                                     system="edi", operation="dispatch")
        transport.send(x.filename, x.details["payload"].encode("ascii" if partner.standard == "x12" else "latin-1",
                                                                errors="replace"))
        xstore.set_state(x.id, ExchangeState.SENT, expect=ExchangeState.NEW,
                         ack_due_at=utcnow() + dt.timedelta(hours=partner.ack_deadline_hours))
        return x.id

    try:
        exchange_id = int(once(f"edi:{partner.id}:order:{po_id}", send, check=already_sent))
    finally:
        transport.close()
    x = xstore.get(exchange_id)
    assert x is not None
    tag = _marker(f"order {x.interchange_control}")
    body = (f"<p>{tag} Sent to {partner.name} as {x.doc_type} (interchange {x.interchange_control}, group "
            f"{x.group_control}, file {x.filename}); acknowledgment due within {partner.ack_deadline_hours:g} h.</p>")
    note = once(f"odoo:{site}:note:edi-order:{exchange_id}", lambda: odoo.post_note("purchase.order", po_id, body),
                check=_note_check(odoo, "purchase.order", po_id, tag))
    return {"po": order.number, "partner": partner.id, "exchange": exchange_id, "doc_type": x.doc_type,
            "interchange": x.interchange_control, "note": note}


def orders_to_send(site: str, *, odoo: Any, config: EdiConfig | None = None) -> list[int]:
    """Confirmed, not fully received orders of EDI vendors at this site that were never sent."""
    config = config or get_edi()
    partners = [p for p in config.for_site(site)]
    if not partners:
        return []
    vendors = odoo.search_read("res.partner", [("ref", "in", [p.odoo_vendor_ref for p in partners])], ["id"])
    if not vendors:
        return []
    code = get_registry().get(site).odoo_warehouse
    rows = odoo.search_read("purchase.order", [
        ("state", "in", ["purchase", "done"]), ("partner_id", "in", [int(v["id"]) for v in vendors]),
        ("picking_type_id.warehouse_id.code", "=", code), ("receipt_status", "!=", "full")], ["id"], order="id")
    out = []
    for row in rows:
        x = xstore.find_outbound_for_po(int(row["id"]))
        if x is None or x.state == ExchangeState.NEW:
            out.append(int(row["id"]))
    return out


# -- inbound --------------------------------------------------------------------------------

def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def poll_inbound(site: str, *, odoo: Any, once: Once, config: EdiConfig | None = None,
                 transports: dict[str, Transport] | None = None) -> dict[str, Any]:
    """Every partner mailbox serving this site, file by file; returns what happened to each."""
    config = config or get_edi()
    summary: dict[str, Any] = {"applied": [], "quarantined": [], "duplicates": [], "other_site": [], "findings": []}
    for partner in config.for_site(site):
        given = (transports or {}).get(partner.id)
        transport = given or open_transport(partner)
        try:
            for name in transport.incoming():
                try:
                    data = transport.fetch(name)
                except FileNotFoundError:
                    continue  # taken by another site's poll
                outcome, findings = process_file(site, partner, transport, name, data, odoo=odoo, once=once,
                                                 config=config)
                summary[outcome].append(name)
                summary["findings"] += findings
        finally:
            if given is None:
                transport.close()
    return summary


def _quarantine(site: str, partner: Partner, transport: Transport, name: str, data: bytes, error: EdiError,
                checksum: str, exchange_id: int | None = None, *, once: Once | None = None,
                config: EdiConfig | None = None) -> list[int]:
    reason = {"file": name, "partner": partner.id, "site": site, "checksum": checksum, **error.as_dict(),
              "at": utcnow().isoformat()}
    if exchange_id is None:
        row = xstore.add(direction="in", partner=partner.id, site=site, standard=partner.standard,
                         doc_type="?", state=ExchangeState.ERROR, filename=name[:200], checksum=checksum,
                         error=error.message[:2000], details={"reason": reason})
        if row is None:  # a concurrent poll refused the same file first: it records and raises it
            transport.quarantine(name, data, reason)
            return []
        exchange_id = row.id
    else:
        xstore.set_state(exchange_id, ExchangeState.ERROR, error=error.message[:2000], details={"reason": reason})
    transport.quarantine(name, data, reason)
    log.warning("EDI file %s from %s quarantined: %s", name, partner.id, error.message)
    if partner.functional_ack and once is not None and config is not None:
        # Tell the partner too: a rejecting 997 / CONTRL for what we could identify in the file.
        for ack in rejection(data, partner, error):
            once(f"edi:{partner.id}:fa:{checksum}:{ack.acknowledged_control}",
                 lambda ack=ack: _send_fa(site, partner, ack, transport, config))
    opened = raise_finding(site, QUARANTINE_KIND, error.code[:48], "edi.exchange", exchange_id, name[:200], 2,
                           f"EDI file {name} from {partner.id} quarantined: {error.message}"[:300], reason)
    return [opened] if opened else []


def _ack_site(inbound: Inbound) -> str | None:
    """Where an acknowledgment-only file belongs: the site of the exchange it acknowledges."""
    for doc in inbound.documents:
        if isinstance(doc.doc, FunctionalAck):
            x = _acknowledged(inbound.partner, doc.doc)
            if x is not None:
                return x.site
    return None


def _acknowledged(partner: Partner, ack: FunctionalAck) -> xstore.Exchange | None:
    if partner.standard == "x12":
        return xstore.find_outbound(partner.id, doc_types=("850",), group_control=ack.acknowledged_control)
    return xstore.find_outbound(partner.id, doc_types=("ORDERS",), interchange_control=ack.acknowledged_control)


def process_file(site: str, partner: Partner, transport: Transport, name: str, data: bytes, *, odoo: Any,
                 once: Once, config: EdiConfig) -> tuple[str, list[int]]:
    checksum = _sha(data)
    seen = xstore.by_checksum("in", partner.id, checksum)
    if seen is not None:
        if seen.state == ExchangeState.APPLIED:
            transport.archive(name, data)  # the same file again: nothing changes
            return "duplicates", []
        if seen.state == ExchangeState.ERROR:
            transport.quarantine(name, data, {"file": name, "code": "duplicate_file", "message":
                                              f"the same file was already refused as exchange #{seen.id}"})
            return "duplicates", []
        if utcnow() - seen.updated_at < STALE_CLAIM:
            return "other_site", []  # being applied by another worker right now
        xstore.delete(seen.id)  # a claim left by a worker that died mid-apply: start again
    try:
        inbound = read(data, config, mailbox_partner=partner.id)
        target = inbound.site or _ack_site(inbound)
        if target is None:
            raise EdiError("unknown_reference", "the acknowledgment refers to no order we sent")
        if target != site:
            return "other_site", []
        if xstore.inbound_with_control(partner.id, inbound.interchange_control) is not None:
            raise EdiError("duplicate_control", f"interchange control number {inbound.interchange_control} was "
                                                "already received from this partner in another file",
                           segment="ISA" if partner.standard == "x12" else "UNB", position=1)
    except EdiError as exc:
        return "quarantined", _quarantine(site, partner, transport, name, data, exc, checksum, once=once,
                                          config=config)
    except Exception as exc:  # a bug of ours must not lose the file or stop the batch
        log.exception("reading %s failed", name)
        err = EdiError("unexpected", f"{type(exc).__name__}: {exc}"[:500])
        return "quarantined", _quarantine(site, partner, transport, name, data, err, checksum)
    row = xstore.add(direction="in", partner=partner.id, site=site, standard=partner.standard,
                     doc_type=inbound.kinds[:32], interchange_control=inbound.interchange_control,
                     group_control=inbound.groups[0][1] if inbound.groups else None,
                     set_control=inbound.documents[0].control if inbound.documents else None,
                     filename=name[:200], checksum=checksum)
    if row is None:
        return "other_site", []  # another worker claimed it between our look and our insert
    findings: list[int] = []
    try:
        for doc in inbound.documents:
            findings += apply_document(site, partner, doc.doc, row.id, checksum, odoo=odoo, once=once)
        if partner.functional_ack:
            send_functional_acks(site, partner, inbound, checksum, once=once, transport=transport, config=config)
    except EdiError as exc:
        return "quarantined", findings + _quarantine(site, partner, transport, name, data, exc, checksum, row.id,
                                                     once=once, config=config)
    except BaseException:
        xstore.delete(row.id)  # transient (Odoo down...): the next poll applies it again (writes are idempotent)
        raise
    first = inbound.documents[0].doc
    key = first.po_number if isinstance(first, Acknowledgment) else \
        first.shipment_id if isinstance(first, ShipNotice) else None
    xstore.set_state(row.id, ExchangeState.APPLIED, business_key=key)
    transport.archive(name, data)
    return "applied", findings


def apply_document(site: str, partner: Partner, doc: Any, exchange_id: int, checksum: str, *, odoo: Any,
                   once: Once) -> list[int]:
    if isinstance(doc, FunctionalAck):
        return apply_functional_ack(site, partner, doc)
    if isinstance(doc, Acknowledgment):
        return apply_acknowledgment(site, partner, doc, checksum, odoo=odoo, once=once)
    if isinstance(doc, ShipNotice):
        return apply_ship_notice(site, partner, doc, checksum, odoo=odoo, once=once)
    raise EdiError("unsupported", f"cannot apply a {type(doc).__name__}")


def apply_functional_ack(site: str, partner: Partner, ack: FunctionalAck) -> list[int]:
    x = _acknowledged(partner, ack)
    if x is None:
        raise EdiError("unknown_reference", f"acknowledges control number {ack.acknowledged_control}, which we "
                                            "never sent")
    if ack.accepted:
        xstore.set_state(x.id, ExchangeState.ACKNOWLEDGED, expect=(ExchangeState.SENT, ExchangeState.ACKNOWLEDGED),
                         acknowledged_at=x.acknowledged_at or utcnow())
        return []
    xstore.set_state(x.id, ExchangeState.ERROR, error=f"rejected by the partner's functional acknowledgment "
                                                      f"({ack.acknowledged_control})")
    opened = raise_finding(site, PO_KIND, "rejected_by_partner", "purchase.order", int(x.odoo_id or 0),
                           x.business_key or "", 3, f"{partner.id} rejected our order {x.business_key} "
                           "(syntax)", {"exchange": x.id})
    return [opened] if opened else []


def _find_po(odoo: Any, number: str) -> dict[str, Any]:
    rows = odoo.search_read("purchase.order", [("name", "=", number)], ["id", "name", "order_line", "date_planned"],
                            limit=1)
    if not rows:
        raise EdiError("unknown_order", f"purchase order {number[:30]!r} is not in Odoo")
    return dict(rows[0])


def apply_acknowledgment(site: str, partner: Partner, ack: Acknowledgment, checksum: str, *, odoo: Any,
                         once: Once) -> list[int]:
    sent = xstore.find_outbound(partner.id, doc_types=("850", "ORDERS"), business_key=ack.po_number)
    if sent is None:
        raise EdiError("unknown_order", f"purchase order {ack.po_number[:30]!r} was never sent to {partner.id}")
    po = _find_po(odoo, ack.po_number)
    lines = {str(line["id"]): line for line in odoo.read("purchase.order.line", list(po["order_line"]),
                                                         ["product_qty", "date_planned", "name"])}
    by_line: dict[str, list[Any]] = {}
    for line in ack.lines:
        if line.line_no not in lines:
            raise EdiError("unknown_line", f"line {line.line_no[:20]!r} is not a line of {ack.po_number}")
        by_line.setdefault(line.line_no, []).append(line)
    changed, rejected, notes = [], [], []
    latest: dt.date | None = None
    for line_no, acks in by_line.items():
        current = lines[line_no]
        values: dict[str, Any] = {}
        if all(a.status == "rejected" for a in acks):
            values["product_qty"] = 0.0
            rejected.append(line_no)
        else:
            qtys = [a.quantity for a in acks if a.status != "rejected" and a.quantity is not None]
            if qtys and float(sum(qtys)) != float(current["product_qty"]):
                values["product_qty"] = float(sum(qtys))
            dates = [a.date for a in acks if a.date]
            if dates:
                values["date_planned"] = _odoo_dt(max(dates))
                latest = max(latest, max(dates)) if latest else max(dates)
            if values or any(a.status in ("changed", "backordered") for a in acks):
                changed.append(line_no)
        if values:
            odoo.write("purchase.order.line", [int(line_no)], values)
            notes.append(f"{current['name']}: " + ", ".join(
                f"{k} {current.get(k)} → {v}" for k, v in values.items()))
    if latest:
        odoo.write("purchase.order", [int(po["id"])], {"date_planned": _odoo_dt(latest)})
    xstore.update_values(sent.id, responded_at=utcnow())
    tag = _marker(f"ack {checksum[:12]}")
    body = (f"<p>{tag} {partner.name} acknowledged {ack.po_number}: {ack.kind}"
            f"{'; ' + '; '.join(notes) if notes else ''}.</p>")
    once(f"odoo:{site}:note:edi-ack:{checksum}", lambda: odoo.post_note("purchase.order", int(po["id"]), body),
         check=_note_check(odoo, "purchase.order", int(po["id"]), tag))
    opened = []
    for rule, line_ids, severity, what in (("supplier_changed", changed, 2, "changed"),
                                           ("supplier_rejected", rejected, 3, "rejected")):
        if line_ids:
            fid = raise_finding(site, PO_KIND, rule, "purchase.order", int(po["id"]), po["name"], severity,
                                f"{partner.name} {what} {len(line_ids)} line(s) of {po['name']}",
                                {"lines": line_ids, "changes": notes, "partner": partner.id})
            if fid:
                opened.append(fid)
    return opened


def apply_ship_notice(site: str, partner: Partner, asn: ShipNotice, checksum: str, *, odoo: Any,
                      once: Once) -> list[int]:
    for order in asn.orders:
        po = _find_po(odoo, order.po_number)
        pickings = odoo.search_read("stock.picking", [("purchase_id", "=", int(po["id"])),
                                                      ("picking_type_code", "=", "incoming"),
                                                      ("state", "not in", ["done", "cancel"])], ["id", "name"],
                                    order="id")
        if not pickings:
            raise EdiError("no_open_receipt", f"purchase order {order.po_number} has no open receipt for shipment "
                                              f"{asn.shipment_id}")
        values: dict[str, Any] = {"carrier_tracking_ref": asn.tracking or asn.bill_of_lading or asn.shipment_id}
        if asn.expected_delivery:
            values["scheduled_date"] = _odoo_dt(asn.expected_delivery)
        ids = [int(p["id"]) for p in pickings]
        odoo.write("stock.picking", ids, values)
        packs = "; ".join(f"{p.sscc or 'unmarked'}: " + ", ".join(f"line {i.line_no} x {i.quantity}" for i in p.items)
                          for p in order.packs)
        tag = _marker(f"asn {checksum[:12]}")
        body = (f"<p>{tag} {partner.name} shipped {asn.shipment_id} on {asn.shipped.isoformat()}"
                f" (carrier {asn.carrier or '?'}, BOL {asn.bill_of_lading or '-'}, tracking {asn.tracking or '-'}"
                f"{', expected ' + asn.expected_delivery.isoformat() if asn.expected_delivery else ''}). "
                f"Packs: {packs}.</p>")
        first = ids[0]
        once(f"odoo:{site}:note:edi-asn:{checksum}:{first}",
             lambda first=first, body=body: odoo.post_note("stock.picking", first, body),
             check=_note_check(odoo, "stock.picking", first, tag))
    return []


def send_functional_acks(site: str, partner: Partner, inbound: Inbound, checksum: str, *, once: Once,
                         transport: Transport, config: EdiConfig) -> None:
    for ack in inbound.functional_ack():
        once(f"edi:{partner.id}:fa:{checksum}:{ack.acknowledged_control}",
             lambda ack=ack: _send_fa(site, partner, ack, transport, config))


def _send_fa(site: str, partner: Partner, ack: FunctionalAck, transport: Transport, config: EdiConfig) -> int:
    icn = xstore.allocate(partner.id, "interchange", f"ack of {ack.acknowledged_control}")
    gcn = xstore.allocate(partner.id, "group", f"ack of {ack.acknowledged_control}")
    qualifier, ours = config.our_party(partner)
    when = utcnow()
    if partner.standard == "x12":
        doc_type = "997"
        text = x12.render(sender=x12.Party(qualifier, ours), receiver=x12.Party(partner.interchange_qualifier,
                                                                                partner.interchange_id),
                          control=icn, group_control=gcn, functional_id="FA",
                          sets=[("997", "0001", x12_docs.write_997(ack))], when=when, test=config.test)
    else:
        doc_type = "CONTRL"
        them = (partner.interchange_id, partner.interchange_qualifier)
        text = edifact.render(sender=(ours, qualifier), recipient=them, control=icn, when=when, test=config.test,
                              messages=[("1", edifact_docs.S009["CONTRL"],
                                         edifact_docs.write_contrl(ack, sender=them, recipient=(ours, qualifier)))])
    data = text.encode("latin-1", errors="replace")
    name = f"{doc_type}_{icn:09d}.edi"
    row = xstore.add(direction="out", partner=partner.id, site=site, standard=partner.standard, doc_type=doc_type,
                     interchange_control=f"{icn:09d}" if partner.standard == "x12" else str(icn),
                     group_control=str(gcn), filename=name, checksum=_sha(data), state=ExchangeState.NEW,
                     details={"acknowledges": ack.acknowledged_control})
    transport.send(name, data)
    assert row is not None
    xstore.set_state(row.id, ExchangeState.SENT)
    return row.id


# -- deadlines ------------------------------------------------------------------------------

def sweep_overdue(now: dt.datetime | None = None) -> list[tuple[str, int]]:
    """Orders with no acknowledgment by their partner's deadline become findings (once each)."""
    now = now or utcnow()
    opened: list[tuple[str, int]] = []
    for x in xstore.overdue(now):
        xstore.update_values(x.id, overdue_at=now)
        if not x.site:
            continue
        fid = raise_finding(x.site, PO_KIND, "ack_overdue", "purchase.order", int(x.odoo_id or 0),
                            x.business_key or "", 2, f"{x.partner} has not acknowledged {x.business_key} "
                            f"(due {x.ack_due_at:%Y-%m-%d %H:%M} UTC)",
                            {"exchange": x.id, "partner": x.partner, "due": x.ack_due_at.isoformat()
                             if x.ack_due_at else None})
        if fid:
            opened.append((x.site, fid))
    return opened
