"""EDIFACT D96A messages <-> the neutral model: ORDERS, ORDRSP, DESADV, CONTRL.

Writers return body segments as lists (tag first; a list inside is a composite);
readers take a parsed `Message` and check what the mapping relies on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from siteops.connectors.edi.edifact import Message, Segment
from siteops.connectors.edi.errors import EdiError
from siteops.connectors.edi.model import (
    AckLine,
    Acknowledgment,
    FunctionalAck,
    LineStatus,
    PoLine,
    PurchaseOrder,
    SetResult,
    ShipItem,
    ShipNotice,
    ShipOrder,
    ShipPack,
)
from siteops.connectors.edi.x12_docs import num

Body = list[list[Any]]
S009 = {t: [t, "D", "96A", "UN", "EAN008"] for t in ("ORDERS", "ORDRSP", "DESADV")}
S009["CONTRL"] = ["CONTRL", "2", "2", "UN"]
# LIN 1229 action request -> ours (D96A code list); EANCOM's QTY+83 marks a backorder.
ACTION: dict[str, LineStatus] = {"5": "accepted", "10": "accepted", "3": "changed", "6": "changed",
                                 "7": "rejected", "2": "rejected"}
ACTION_CODE = {"accepted": "5", "changed": "3", "rejected": "7", "backordered": "3"}
BGM_KIND = {"29": "accepted", "4": "changed", "27": "rejected", "9": "accepted", "5": "changed"}
BGM_CODE = {"accepted": "29", "changed": "4", "rejected": "27"}


def d102(value: dt.date) -> str:
    return value.strftime("%Y%m%d")


def parse_date(seg: Segment, what: str) -> dt.date:
    raw, fmt = seg.el(1, 1), seg.el(1, 2) or "102"
    try:
        if fmt != "102" or len(raw) != 8 or not raw.isdigit():
            raise ValueError(raw)
        return dt.date(int(raw[:4]), int(raw[4:6]), int(raw[6:]))
    except ValueError:
        raise EdiError("bad_date", f"DTM {seg.el(1)} ({what}) {raw[:20]!r} is not a CCYYMMDD (102) date",
                       segment="DTM", position=seg.position) from None


def parse_qty(seg: Segment, n: int, c: int, what: str) -> Decimal:
    raw = seg.require(n, what, c)
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0 or len(raw) > 15 or "e" in raw.lower():
        raise EdiError("bad_quantity", f"{seg.tag} ({what}) {raw[:20]!r} is not a non-negative number",
                       segment=seg.tag, position=seg.position)
    return value


def _check(msg: Message, kind: str) -> None:
    if msg.type != kind:
        raise EdiError("wrong_set", f"expected {kind}, got {msg.type}", segment="UNH", position=msg.position)


def _first(msg: Message, tag: str) -> Segment:
    for seg in msg.segments:
        if seg.tag == tag:
            return seg
    raise EdiError("missing_segment", f"the {msg.type} has no {tag}", segment="UNH", position=msg.position)


def _cnt(msg: Message, lines: int) -> None:
    for seg in msg.segments:
        if seg.tag == "CNT" and seg.el(1) == "2" and seg.el(1, 1) != str(lines):
            raise EdiError("count_mismatch", f"CNT+2 says {seg.el(1, 1)!r} lines; the message has {lines}",
                           segment="CNT", position=seg.position)


def _ship_to(msg: Message) -> str:
    for seg in msg.segments:
        if seg.tag == "NAD" and seg.el(1) == "DP":
            return seg.el(2)
    return ""


# -- ORDERS --------------------------------------------------------------------------------

def write_orders(po: PurchaseOrder) -> Body:
    body: Body = [["BGM", "220", po.number, "9"], ["DTM", ["137", d102(po.date), "102"]]]
    if po.requested_delivery:
        body.append(["DTM", ["2", d102(po.requested_delivery), "102"]])
    body.append(["NAD", "DP", [po.ship_to, "", "9"], "", po.buyer_name[:35]] if po.buyer_name else
                ["NAD", "DP", [po.ship_to, "", "9"]])
    if po.currency:
        body.append(["CUX", ["2", po.currency, "9"]])
    for line in po.lines:
        body.append(["LIN", line.line_no, "", [line.gtin, "EN"]] if line.gtin else ["LIN", line.line_no])
        ids = [[v, q] for q, v in (("SA", line.vendor_part), ("BP", line.buyer_part)) if v]
        if ids:
            body.append(["PIA", "1", *ids])
        if line.description:
            body.append(["IMD", "F", "", ["", "", "", line.description[:35]]])
        body.append(["QTY", ["21", num(line.quantity), line.uom]])
        if line.price is not None:
            body.append(["PRI", ["AAA", num(line.price)]])
    body += [["UNS", "S"], ["CNT", ["2", str(len(po.lines))]]]
    return body


def read_orders(msg: Message) -> PurchaseOrder:
    _check(msg, "ORDERS")
    bgm = _first(msg, "BGM")
    lines: list[PoLine] = []
    cur: dict[str, Any] | None = None
    head: dict[str, Any] = {"requested_delivery": None, "currency": "", "date": None}

    def flush() -> None:
        if cur is not None:
            if "quantity" not in cur:
                raise EdiError("missing_segment", f"line {cur['line_no']} has no QTY+21", segment="LIN",
                               position=cur.pop("position"))
            cur.pop("position")
            lines.append(PoLine(**cur))

    for seg in msg.segments:
        if seg.tag == "LIN":
            flush()
            cur = {"line_no": seg.require(1, "line number"), "gtin": seg.el(3) if seg.el(3, 1) == "EN" else "",
                   "uom": "", "price": None, "position": seg.position}
        elif cur is None:
            if seg.tag == "DTM" and seg.el(1) == "137":
                head["date"] = parse_date(seg, "document date")
            elif seg.tag == "DTM" and seg.el(1) == "2":
                head["requested_delivery"] = parse_date(seg, "requested delivery")
            elif seg.tag == "CUX":
                head["currency"] = seg.el(1, 1)
            elif seg.tag == "NAD" and seg.el(1) == "DP":
                head["buyer_name"] = seg.el(4)
        elif seg.tag == "PIA":
            for n in range(2, len(seg.elements) + 1):
                key = {"SA": "vendor_part", "BP": "buyer_part"}.get(seg.el(n, 1))
                if key:
                    cur[key] = seg.el(n)
        elif seg.tag == "IMD":
            cur["description"] = seg.el(3, 3)
        elif seg.tag == "QTY" and seg.el(1) == "21":
            cur["quantity"] = parse_qty(seg, 1, 1, "ordered quantity")
            cur["uom"] = seg.el(1, 2)
        elif seg.tag == "PRI":
            cur["price"] = parse_qty(seg, 1, 1, "price")
    flush()
    if not lines:
        raise EdiError("no_lines", "the ORDERS has no LIN", segment="BGM", position=bgm.position)
    _cnt(msg, len(lines))
    if head["date"] is None:
        raise EdiError("missing_segment", "the ORDERS has no DTM+137 (document date)", segment="BGM",
                       position=bgm.position)
    return PurchaseOrder(number=bgm.require(2, "order number"), ship_to=_ship_to(msg), lines=tuple(lines), **head)


# -- ORDRSP --------------------------------------------------------------------------------

def write_ordrsp(ack: Acknowledgment) -> Body:
    body: Body = [["BGM", "231", ack.supplier_order or ack.po_number, BGM_CODE[ack.kind]],
                  ["DTM", ["137", d102(ack.date), "102"]], ["RFF", ["ON", ack.po_number]]]
    if ack.ship_to:
        body.append(["NAD", "DP", [ack.ship_to, "", "9"]])
    for line in ack.lines:
        body.append(["LIN", line.line_no, ACTION_CODE[line.status]])
        if line.quantity is not None:
            body.append(["QTY", ["83" if line.status == "backordered" else "21", num(line.quantity)]])
        if line.date:
            body.append(["DTM", ["2", d102(line.date), "102"]])
    body += [["UNS", "S"], ["CNT", ["2", str(len(ack.lines))]]]
    return body


def read_ordrsp(msg: Message) -> Acknowledgment:
    _check(msg, "ORDRSP")
    bgm = _first(msg, "BGM")
    kind = BGM_KIND.get(bgm.el(3) or "29")
    if kind is None:
        raise EdiError("bad_code", f"BGM 1225 {bgm.el(3)[:5]!r} is not a response type we know", segment="BGM",
                       position=bgm.position)
    po = ""
    date = None
    lines: list[dict[str, Any]] = []
    for seg in msg.segments:
        if seg.tag == "LIN":
            status = ACTION.get(seg.require(2, "action request"))
            if status is None:
                raise EdiError("bad_code", f"LIN 1229 {seg.el(2)[:5]!r} is not an action code we know",
                               segment="LIN", position=seg.position)
            lines.append({"line_no": seg.require(1, "line number"), "status": status, "quantity": None,
                          "date": None})
        elif seg.tag == "RFF" and seg.el(1) == "ON" and not lines:
            po = seg.require(1, "order number", 1)
        elif seg.tag == "DTM" and seg.el(1) == "137" and not lines:
            date = parse_date(seg, "document date")
        elif seg.tag == "QTY" and lines:
            lines[-1]["quantity"] = parse_qty(seg, 1, 1, "quantity")
            if seg.el(1) == "83":
                lines[-1]["status"] = "backordered"
        elif seg.tag == "DTM" and seg.el(1) == "2" and lines:
            lines[-1]["date"] = parse_date(seg, "delivery date")
    if not po:
        raise EdiError("missing_segment", "the ORDRSP has no RFF+ON (our order number)", segment="BGM",
                       position=bgm.position)
    if date is None:
        raise EdiError("missing_segment", "the ORDRSP has no DTM+137", segment="BGM", position=bgm.position)
    _cnt(msg, len(lines))
    return Acknowledgment(po_number=po, kind=kind, date=date, lines=tuple(AckLine(**x) for x in lines),  # type: ignore[arg-type]
                          ship_to=_ship_to(msg), supplier_order=bgm.el(2))


# -- DESADV --------------------------------------------------------------------------------

def write_desadv(asn: ShipNotice) -> Body:
    body: Body = [["BGM", "351", asn.shipment_id, "9"], ["DTM", ["137", d102(asn.shipped), "102"]],
                  ["DTM", ["11", d102(asn.shipped), "102"]]]
    if asn.expected_delivery:
        body.append(["DTM", ["17", d102(asn.expected_delivery), "102"]])
    if asn.bill_of_lading:
        body.append(["RFF", ["BM", asn.bill_of_lading]])
    if asn.tracking:
        body.append(["RFF", ["CN", asn.tracking]])
    body.append(["NAD", "DP", [asn.ship_to, "", "9"]])
    if asn.carrier:
        body.append(["TDT", "20", "", "30", "", [asn.carrier, "", "", asn.carrier]])
    body.append(["CPS", "1"])
    cps, n_lines = 1, 0
    for order in asn.orders:
        for pack in order.packs:
            cps += 1
            body += [["CPS", str(cps), "1"], ["PAC", "1", "", "CT"]]
            if pack.sscc:
                body += [["PCI", "33E"], ["GIN", "BJ", pack.sscc]]
            for item in pack.items:
                n_lines += 1
                body.append(["LIN", item.line_no, "", [item.product, "SA"]] if item.product else
                            ["LIN", item.line_no])
                body.append(["QTY", ["12", num(item.quantity), item.uom] if item.uom else ["12", num(item.quantity)]])
                body.append(["RFF", ["ON", order.po_number]])
    body.append(["CNT", ["2", str(n_lines)]])
    return body


def read_desadv(msg: Message) -> ShipNotice:
    _check(msg, "DESADV")
    bgm = _first(msg, "BGM")
    head: dict[str, Any] = {"expected_delivery": None, "bill_of_lading": "", "tracking": "", "carrier": ""}
    shipped = None
    header_po = ""
    orders: dict[str, dict[str, list[ShipItem]]] = {}  # po -> sscc -> items (in order of appearance)
    sscc = ""
    in_lines = False
    item: dict[str, Any] | None = None
    n_lines = 0

    def flush() -> None:
        nonlocal item
        if item is not None:
            if "quantity" not in item:
                raise EdiError("missing_segment", f"line {item['line_no']} has no QTY+12", segment="LIN",
                               position=item["position"])
            po = item.get("po") or header_po
            if not po:
                raise EdiError("missing_segment", f"line {item['line_no']} names no order (RFF+ON)",
                               segment="LIN", position=item["position"])
            orders.setdefault(po, {}).setdefault(item["sscc"], []).append(
                ShipItem(line_no=item["line_no"], quantity=item["quantity"], uom=item["uom"],
                         product=item["product"]))
            item = None

    for seg in msg.segments:
        if seg.tag == "CPS":
            flush()
            in_lines, sscc = True, ""
        elif seg.tag == "GIN" and seg.el(1) == "BJ":
            sscc = seg.el(2)
        elif seg.tag == "LIN":
            flush()
            n_lines += 1
            item = {"line_no": seg.require(1, "line number"), "product": seg.el(3), "sscc": sscc, "uom": "",
                    "position": seg.position}
        elif seg.tag == "QTY" and item is not None and seg.el(1) == "12":
            item["quantity"] = parse_qty(seg, 1, 1, "despatch quantity")
            item["uom"] = seg.el(1, 2)
        elif seg.tag == "RFF" and seg.el(1) == "ON":
            if item is not None:
                item["po"] = seg.el(1, 1)
            elif not in_lines:
                header_po = seg.el(1, 1)
        elif not in_lines:
            if seg.tag == "DTM" and seg.el(1) == "11":
                shipped = parse_date(seg, "despatch date")
            elif seg.tag == "DTM" and seg.el(1) == "137" and shipped is None:
                shipped = parse_date(seg, "document date")
            elif seg.tag == "DTM" and seg.el(1) in ("17", "132"):
                head["expected_delivery"] = parse_date(seg, "estimated delivery")
            elif seg.tag == "RFF" and seg.el(1) == "BM":
                head["bill_of_lading"] = seg.el(1, 1)
            elif seg.tag == "RFF" and seg.el(1) == "CN":
                head["tracking"] = seg.el(1, 1)
            elif seg.tag == "TDT":
                head["carrier"] = seg.el(5)
    flush()
    if not orders:
        raise EdiError("no_lines", "the DESADV has no LIN", segment="BGM", position=bgm.position)
    _cnt(msg, n_lines)
    if shipped is None:
        raise EdiError("missing_segment", "the DESADV has no DTM+11 or DTM+137", segment="BGM", position=bgm.position)
    return ShipNotice(shipment_id=bgm.require(2, "despatch advice number"), shipped=shipped, ship_to=_ship_to(msg),
                      orders=tuple(ShipOrder(po_number=po, packs=tuple(ShipPack(sscc=s, items=tuple(i))
                                                                       for s, i in packs.items()))
                                   for po, packs in orders.items()), **head)


# -- CONTRL --------------------------------------------------------------------------------

def write_contrl(ack: FunctionalAck, *, sender: tuple[str, str], recipient: tuple[str, str]) -> Body:
    """Acknowledge interchange `ack.acknowledged_control` (we received it from `sender`)."""
    action = "7" if ack.accepted else "4"
    body: Body = [["UCI", ack.acknowledged_control, list(sender), list(recipient), action]]
    for s in ack.sets:
        body.append(["UCM", s.control, S009.get(s.code, [s.code, "D", "96A", "UN"]), "7" if s.accepted else "4"])
    return body


def read_contrl(msg: Message) -> FunctionalAck:
    _check(msg, "CONTRL")
    uci = _first(msg, "UCI")
    action = uci.require(4, "action code")
    if action not in ("4", "7", "8"):
        raise EdiError("bad_code", f"UCI 0083 {action[:5]!r} is not an action code we know", segment="UCI",
                       position=uci.position)
    sets = tuple(SetResult(code=seg.el(2), control=seg.require(1, "message reference"),
                           accepted=seg.el(3) in ("7", "8")) for seg in msg.segments if seg.tag == "UCM")
    return FunctionalAck(acknowledged_control=uci.require(1, "interchange reference"), functional_id="",
                         accepted=action in ("7", "8"), sets=sets)


READERS: dict[str, Callable[[Message], Any]] = {
    "ORDERS": read_orders, "ORDRSP": read_ordrsp, "DESADV": read_desadv, "CONTRL": read_contrl}
