"""X12 004010 transaction sets <-> the neutral model: 850, 855, 856, 997.

Writers return the body segments of one set (without ST/SE: `x12.render` adds the
envelopes and counts). Readers take a parsed `TransactionSet` and check what the
mapping relies on — mandatory elements, dates, quantities, the CTT totals, the HL
tree — naming the segment and its position when something is wrong.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

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
from siteops.connectors.edi.x12 import Segment, TransactionSet

Body = list[list[str]]
FUNCTIONAL_ID = {"850": "PO", "855": "PR", "856": "SH", "997": "FA"}

# ACK01 line status codes (element 668) -> ours. Codes not listed are refused, not guessed.
ACK_STATUS: dict[str, LineStatus] = {
    "IA": "accepted", "AR": "accepted",
    "IC": "changed", "IQ": "changed", "IP": "changed", "IS": "changed", "DR": "changed",
    "IR": "rejected", "ID": "rejected",
    "IB": "backordered",
}
ACK_CODE: dict[LineStatus, str] = {"accepted": "IA", "changed": "IC", "rejected": "IR", "backordered": "IB"}
# BAK02 acknowledgment type -> the header's verdict.
BAK_KIND = {"AC": "changed", "AD": "accepted", "AK": "accepted", "AT": "accepted", "RD": "rejected",
            "RJ": "rejected", "RF": "rejected"}


def num(value: Decimal) -> str:
    """A quantity or price as X12 R: no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return text


def ymd(value: dt.date) -> str:
    return value.strftime("%Y%m%d")


def clean(value: str) -> str:
    """Free text must not carry our delimiters."""
    return "".join(" " if ch in "*~>^" else ch for ch in value)[:80].strip()


def parse_date(seg: Segment, n: int, what: str, *, required: bool = True) -> dt.date | None:
    raw = seg.el(n)
    if not raw:
        if required:
            seg.require(n, what)
        return None
    try:
        if len(raw) != 8 or not raw.isdigit():
            raise ValueError(raw)
        return dt.date(int(raw[:4]), int(raw[4:6]), int(raw[6:]))
    except ValueError:
        raise EdiError("bad_date", f"{seg.tag}{n:02d} ({what}) {raw[:20]!r} is not a CCYYMMDD date",
                       segment=seg.tag, position=seg.position) from None


def parse_qty(seg: Segment, n: int, what: str, *, required: bool = True) -> Decimal | None:
    raw = seg.el(n)
    if not raw:
        if required:
            seg.require(n, what)
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0 or len(raw) > 15 or "e" in raw.lower():
        raise EdiError("bad_quantity", f"{seg.tag}{n:02d} ({what}) {raw[:20]!r} is not a non-negative number",
                       segment=seg.tag, position=seg.position)
    return value


def _one(tset: TransactionSet, tag: str) -> Segment:
    for seg in tset.segments:
        if seg.tag == tag:
            return seg
    raise EdiError("missing_segment", f"the {tset.code} has no {tag} segment", segment="ST",
                   position=tset.position)


def _ship_to(tset: TransactionSet) -> str:
    for seg in tset.segments:
        if seg.tag == "N1" and seg.el(1) == "ST":
            return seg.el(4)
    return ""


def _ctt(tset: TransactionSet, expected: int, what: str) -> None:
    for seg in tset.segments:
        if seg.tag == "CTT" and seg.el(1) != str(expected):
                raise EdiError("count_mismatch", f"CTT01 says {seg.el(1)!r} {what}; the set has {expected}",
                           segment="CTT", position=seg.position)


def _pairs(seg: Segment, start: int) -> dict[str, str]:
    """Qualifier/id pairs (PO106/PO107, ...) as a dict."""
    out: dict[str, str] = {}
    for i in range(start, len(seg.elements) + 1, 2):
        if seg.el(i) and seg.el(i + 1):
            out.setdefault(seg.el(i), seg.el(i + 1))
    return out


def _check_set(tset: TransactionSet, code: str) -> None:
    if tset.code != code:
        raise EdiError("wrong_set", f"expected a {code}, got {tset.code}", segment="ST", position=tset.position)


# -- 850 -----------------------------------------------------------------------------------

def write_850(po: PurchaseOrder) -> Body:
    body: Body = [["BEG", "00", "SA", po.number, "", ymd(po.date)]]
    if po.currency:
        body.append(["CUR", "BY", po.currency])
    if po.requested_delivery:
        body.append(["DTM", "002", ymd(po.requested_delivery)])
    body.append(["N1", "ST", clean(po.buyer_name or po.ship_to), "92", po.ship_to])
    for line in po.lines:
        ids = [x for q, v in (("VP", line.vendor_part), ("BP", line.buyer_part), ("UP", line.gtin)) if v
               for x in (q, v)]
        body.append(["PO1", line.line_no, num(line.quantity), line.uom,
                     num(line.price) if line.price is not None else "", "PE" if line.price is not None else "",
                     *ids])
        if line.description:
            body.append(["PID", "F", "", "", "", clean(line.description)])
    total = sum((line.quantity for line in po.lines), Decimal(0))
    body.append(["CTT", str(len(po.lines)), num(total)])
    return body


def read_850(tset: TransactionSet) -> PurchaseOrder:
    _check_set(tset, "850")
    beg = _one(tset, "BEG")
    lines: list[PoLine] = []
    current: dict[str, object] | None = None
    requested = None
    currency = ""
    buyer = ""

    def flush() -> None:
        if current is not None:
            lines.append(PoLine(**current))  # type: ignore[arg-type]

    for seg in tset.segments:
        if seg.tag == "PO1":
            flush()
            ids = _pairs(seg, 6)
            current = {"line_no": seg.require(1, "line number"), "quantity": parse_qty(seg, 2, "quantity"),
                       "uom": seg.require(3, "unit of measure"), "price": parse_qty(seg, 4, "price", required=False),
                       "vendor_part": ids.get("VP", ""), "buyer_part": ids.get("BP", ""), "gtin": ids.get("UP", "")}
        elif seg.tag == "PID" and current is not None:
            current["description"] = seg.el(5)
        elif seg.tag == "DTM" and seg.el(1) == "002":
            requested = parse_date(seg, 2, "requested delivery")
        elif seg.tag == "CUR":
            currency = seg.el(2)
        elif seg.tag == "N1" and seg.el(1) == "ST":
            buyer = seg.el(2)
    flush()
    if not lines:
        raise EdiError("no_lines", "the 850 has no PO1 line", segment="BEG", position=beg.position)
    _ctt(tset, len(lines), "PO1 lines")
    date = parse_date(beg, 5, "purchase order date")
    assert date is not None
    return PurchaseOrder(number=beg.require(3, "purchase order number"), date=date, ship_to=_ship_to(tset),
                         lines=tuple(lines), requested_delivery=requested, currency=currency, buyer_name=buyer)


# -- 855 -----------------------------------------------------------------------------------

def write_855(ack: Acknowledgment) -> Body:
    bak02 = {"accepted": "AD", "changed": "AC", "rejected": "RD"}[ack.kind]
    body: Body = [["BAK", "00", bak02, ack.po_number, ymd(ack.date), "", "", "", ack.supplier_order, ymd(ack.date)]]
    if ack.ship_to:
        body.append(["N1", "ST", clean(ack.ship_to), "92", ack.ship_to])
    seen: list[str] = []
    for line in ack.lines:
        if line.line_no not in seen:
            seen.append(line.line_no)
            body.append(["PO1", line.line_no])
        qty = [num(line.quantity), "EA"] if line.quantity is not None else ["", ""]
        date = ["068", ymd(line.date)] if line.date else []
        body.append(["ACK", ACK_CODE[line.status], *qty, *date])
    body.append(["CTT", str(len(seen))])
    return body


def read_855(tset: TransactionSet) -> Acknowledgment:
    _check_set(tset, "855")
    bak = _one(tset, "BAK")
    kind = BAK_KIND.get(bak.require(2, "acknowledgment type"))
    if kind is None:
        raise EdiError("bad_code", f"BAK02 {bak.el(2)[:10]!r} is not an acknowledgment type we know",
                       segment="BAK", position=bak.position)
    lines: list[AckLine] = []
    line_no: str | None = None
    n_po1 = 0
    for seg in tset.segments:
        if seg.tag == "PO1":
            line_no = seg.require(1, "line number")
            n_po1 += 1
        elif seg.tag == "ACK":
            if line_no is None:
                raise EdiError("outside_loop", "ACK before any PO1", segment="ACK", position=seg.position)
            status = ACK_STATUS.get(seg.require(1, "line status"))
            if status is None:
                raise EdiError("bad_code", f"ACK01 {seg.el(1)[:10]!r} is not a line status we know",
                               segment="ACK", position=seg.position)
            lines.append(AckLine(line_no=line_no, status=status, quantity=parse_qty(seg, 2, "quantity", required=False),
                                 date=parse_date(seg, 5, "date", required=False)))
    _ctt(tset, n_po1, "PO1 lines")
    date = parse_date(bak, 4, "purchase order date")
    assert date is not None
    return Acknowledgment(po_number=bak.require(3, "purchase order number"), kind=kind, date=date,  # type: ignore[arg-type]
                          lines=tuple(lines), ship_to=_ship_to(tset), supplier_order=bak.el(8))


# -- 856 -----------------------------------------------------------------------------------

def write_856(asn: ShipNotice) -> Body:
    body: Body = [["BSN", "00", asn.shipment_id, ymd(asn.shipped), "1200", "0001"], ["HL", "1", "", "S"]]
    if asn.carrier:
        body.append(["TD5", "", "2", asn.carrier, "M"])
    if asn.bill_of_lading:
        body.append(["REF", "BM", asn.bill_of_lading])
    if asn.tracking:
        body.append(["REF", "CN", asn.tracking])
    body.append(["DTM", "011", ymd(asn.shipped)])
    if asn.expected_delivery:
        body.append(["DTM", "017", ymd(asn.expected_delivery)])
    body.append(["N1", "ST", clean(asn.ship_to), "92", asn.ship_to])
    hl = 1
    for order in asn.orders:
        hl += 1
        order_hl = hl
        body += [["HL", str(order_hl), "1", "O"], ["PRF", order.po_number]]
        for pack in order.packs:
            hl += 1
            pack_hl = hl
            body.append(["HL", str(pack_hl), str(order_hl), "P"])
            if pack.sscc:
                body.append(["MAN", "GM", pack.sscc])
            for item in pack.items:
                hl += 1
                body += [["HL", str(hl), str(pack_hl), "I"],
                         ["LIN", item.line_no, *(["VP", item.product] if item.product else [])],
                         ["SN1", "", num(item.quantity), item.uom or "EA"]]
    body.append(["CTT", str(hl)])
    return body


_PARENT_LEVEL = {"S": None, "O": "S", "T": "O", "P": "OT", "I": "OPT"}


def read_856(tset: TransactionSet) -> ShipNotice:
    _check_set(tset, "856")
    bsn = _one(tset, "BSN")
    levels: dict[str, str] = {}
    parents: dict[str, str] = {}
    orders: dict[str, dict[str, Any]] = {}  # order HL -> {"po", "packs": [pack HL]}
    packs: dict[str, dict[str, Any]] = {}  # pack HL (or order HL for SOI) -> {"sscc", "items"}
    current, level = "", ""
    item: dict[str, Any] = {}
    head: dict[str, Any] = {"carrier": "", "bill_of_lading": "", "tracking": "", "expected_delivery": None,
                            "ship_to": ""}
    shipped = None

    def order_above(hl: str) -> str:
        while levels.get(hl) not in ("O", None):
            hl = parents[hl]
        return hl

    def end_item() -> None:
        if item:
            if "quantity" not in item:
                raise EdiError("missing_segment", f"item HL {current} has no SN1 (or no LIN)", segment="HL",
                               position=item["position"])
            packs[item["pack"]]["items"].append(ShipItem(line_no=item["line_no"], quantity=item["quantity"],
                                                         uom=item["uom"], product=item["product"]))
            item.clear()

    for seg in tset.segments:
        if seg.tag == "HL":
            end_item()
            hl_id, parent, level = seg.require(1, "hierarchical id"), seg.el(2), seg.require(3, "level code")
            if hl_id in levels:
                raise EdiError("duplicate_hl", f"HL01 {hl_id} used twice", segment="HL", position=seg.position)
            if level not in _PARENT_LEVEL:
                raise EdiError("bad_code", f"HL03 {level[:5]!r} is not a level we read (S, O, T, P, I)",
                               segment="HL", position=seg.position)
            allowed = _PARENT_LEVEL[level]
            if (allowed is None and parent) or (allowed is not None and levels.get(parent, "-") not in allowed):
                raise EdiError("bad_hierarchy", f"HL {hl_id} ({level}) under {parent or 'nothing'!r}: parent "
                                                "missing or of the wrong level", segment="HL", position=seg.position)
            levels[hl_id], parents[hl_id], current = level, parent, hl_id
            if level == "O":
                orders[hl_id] = {"po": "", "packs": [], "position": seg.position}
            elif level == "P":
                packs[hl_id] = {"sscc": "", "items": []}
                orders[order_above(parent)]["packs"].append(hl_id)
            elif level == "I":
                pack = parent
                if levels[parent] != "P" and parent not in packs:  # SOI: items under the order: one unmarked pack
                    packs[parent] = {"sscc": "", "items": []}
                    orders[order_above(parent)]["packs"].append(parent)
                item.update(pack=pack, position=seg.position)
        elif seg.tag == "PRF" and level == "O":
            orders[current]["po"] = seg.require(1, "purchase order number")
        elif seg.tag == "MAN" and level == "P":
            packs[current]["sscc"] = seg.el(2)
        elif seg.tag == "LIN" and level == "I":
            ids = _pairs(seg, 2)
            item.update(line_no=seg.require(1, "line number"), product=ids.get("VP") or ids.get("UP", ""))
        elif seg.tag == "SN1" and level == "I":
            if "line_no" not in item:
                raise EdiError("missing_segment", "SN1 before the item's LIN", segment="SN1", position=seg.position)
            item.update(quantity=parse_qty(seg, 2, "units shipped"), uom=seg.el(3))
        elif level == "S":
            if seg.tag == "TD5":
                head["carrier"] = seg.el(3)
            elif seg.tag == "REF" and seg.el(1) == "BM":
                head["bill_of_lading"] = seg.el(2)
            elif seg.tag == "REF" and seg.el(1) == "CN":
                head["tracking"] = seg.el(2)
            elif seg.tag == "DTM" and seg.el(1) == "011":
                shipped = parse_date(seg, 2, "shipped date")
            elif seg.tag == "DTM" and seg.el(1) == "017":
                head["expected_delivery"] = parse_date(seg, 2, "estimated delivery date")
            elif seg.tag == "N1" and seg.el(1) == "ST":
                head["ship_to"] = seg.el(4)
    end_item()
    _ctt(tset, len(levels), "HL segments")
    if "S" not in levels.values():
        raise EdiError("missing_segment", "the 856 has no shipment HL", segment="BSN", position=bsn.position)
    if not orders:
        raise EdiError("no_lines", "the 856 names no order", segment="BSN", position=bsn.position)
    result = []
    for order in orders.values():
        if not order["po"]:
            raise EdiError("missing_segment", "an order HL without its PRF (purchase order number)",
                           segment="HL", position=order["position"])
        result.append(ShipOrder(po_number=order["po"], packs=tuple(
            ShipPack(sscc=packs[p]["sscc"], items=tuple(packs[p]["items"])) for p in order["packs"])))
    shipped = shipped or parse_date(bsn, 3, "shipment date")
    assert shipped is not None
    return ShipNotice(shipment_id=bsn.require(2, "shipment id"), shipped=shipped, orders=tuple(result), **head)


# -- 997 -----------------------------------------------------------------------------------

def write_997(ack: FunctionalAck) -> Body:
    body: Body = [["AK1", ack.functional_id, ack.acknowledged_control]]
    for s in ack.sets:
        body.append(["AK2", s.code, s.control])
        for where in s.errors:  # "SEG:position-in-set": AK3 segment error 8 (data element errors)
            seg, _, pos = where.partition(":")
            body.append(["AK3", seg, pos, "", "8"])
        body.append(["AK5", "A"] if s.accepted else ["AK5", "R", "5"])
    accepted = sum(1 for s in ack.sets if s.accepted)
    body.append(["AK9", "A" if ack.accepted else "R", str(len(ack.sets)), str(len(ack.sets)), str(accepted)])
    return body


def read_997(tset: TransactionSet) -> FunctionalAck:
    _check_set(tset, "997")
    ak1 = _one(tset, "AK1")
    ak9 = _one(tset, "AK9")
    sets: list[SetResult] = []
    pending: Segment | None = None
    errors: list[str] = []
    for seg in tset.segments:
        if seg.tag == "AK2":
            pending, errors = seg, []
        elif seg.tag == "AK3":
            errors.append(f"{seg.el(1)}:{seg.el(2)}")
        elif seg.tag == "AK5":
            if pending is None:
                raise EdiError("outside_loop", "AK5 without its AK2", segment="AK5", position=seg.position)
            code = seg.require(1, "set acknowledgment code")
            sets.append(SetResult(code=pending.require(1, "set id"), control=pending.require(2, "set control"),
                                  accepted=code in ("A", "E"), errors=tuple(errors)))
            pending = None
    verdict = ak9.require(1, "group acknowledgment code")
    if verdict not in ("A", "E", "P", "R", "M", "W", "X"):
        raise EdiError("bad_code", f"AK901 {verdict[:5]!r} is not a group acknowledgment code", segment="AK9",
                       position=ak9.position)
    return FunctionalAck(acknowledged_control=ak1.require(2, "group control number"),
                         functional_id=ak1.require(1, "functional id"), accepted=verdict in ("A", "E"),
                         sets=tuple(sets))


READERS: dict[str, Callable[[TransactionSet], Any]] = {
    "850": read_850, "855": read_855, "856": read_856, "997": read_997}


def iter_sets(groups: Sequence[object]) -> Iterator[TransactionSet]:
    for group in groups:
        yield from group.sets  # type: ignore[attr-defined]
