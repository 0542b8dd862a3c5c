"""The neutral model between Odoo and the EDI documents: what a document *means*.

X12 and EDIFACT readers produce these, writers consume them; the services that talk to
Odoo never see a segment. Quantities are `Decimal` (exact: "12.5" stays 12.5), dates are
`datetime.date`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

#: Line statuses of an acknowledgment, whatever the standard calls them
#: (X12 ACK01 IA/IC/IQ/IR/IB..., EDIFACT LIN 1229 5/3/6/7).
LineStatus = Literal["accepted", "changed", "rejected", "backordered"]
STATUSES: tuple[LineStatus, ...] = ("accepted", "changed", "rejected", "backordered")


@dataclass(frozen=True)
class PoLine:
    line_no: str  # our purchase.order.line id, as text: how the answer names the line
    quantity: Decimal
    uom: str  # X12 UOM code (EA, CA...); EDIFACT measure unit (PCE...)
    price: Decimal | None
    vendor_part: str = ""  # the supplier's article number (X12 VP / EDIFACT PIA SA)
    buyer_part: str = ""  # our product's internal reference (X12 BP / EDIFACT PIA BP)
    gtin: str = ""  # barcode (X12 UP/EN / EDIFACT LIN EN)
    description: str = ""


@dataclass(frozen=True)
class PurchaseOrder:
    number: str  # purchase.order name (BEG03 / BGM 1004)
    date: dt.date
    ship_to: str  # the site's code at this partner (N1*ST / NAD+DP)
    lines: tuple[PoLine, ...]
    requested_delivery: dt.date | None = None
    currency: str = ""
    buyer_name: str = ""


@dataclass(frozen=True)
class AckLine:
    line_no: str
    status: LineStatus
    quantity: Decimal | None = None  # the quantity the supplier will deliver (for changed)
    date: dt.date | None = None  # the supplier's promised date for this line


@dataclass(frozen=True)
class Acknowledgment:
    """855 / ORDRSP: the supplier's business answer to one purchase order."""

    po_number: str
    kind: Literal["accepted", "changed", "rejected"]  # the header's verdict
    date: dt.date
    lines: tuple[AckLine, ...]
    ship_to: str = ""
    supplier_order: str = ""


@dataclass(frozen=True)
class ShipItem:
    line_no: str
    quantity: Decimal
    uom: str = ""
    product: str = ""  # vendor part or GTIN, as the notice gives it


@dataclass(frozen=True)
class ShipPack:
    sscc: str  # the carton's GS1 serial shipping container code ("" when not marked)
    items: tuple[ShipItem, ...]


@dataclass(frozen=True)
class ShipOrder:
    po_number: str
    packs: tuple[ShipPack, ...]


@dataclass(frozen=True)
class ShipNotice:
    """856 / DESADV: shipment -> order -> pack -> item."""

    shipment_id: str
    shipped: dt.date
    ship_to: str
    orders: tuple[ShipOrder, ...]
    expected_delivery: dt.date | None = None
    carrier: str = ""  # SCAC (TD503) / TDT carrier id
    bill_of_lading: str = ""
    tracking: str = ""


@dataclass(frozen=True)
class SetResult:
    """One acknowledged transaction set / message."""

    code: str  # 850, ORDERS...
    control: str  # ST02 / UNH 0062
    accepted: bool
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class FunctionalAck:
    """997 / CONTRL: the syntax-level answer to one group (X12) or interchange (EDIFACT)."""

    acknowledged_control: str  # GS06 of the group (X12) or UNB 0020 (EDIFACT)
    functional_id: str  # GS01 (PO, PR, SH) / the message type for EDIFACT
    accepted: bool
    sets: tuple[SetResult, ...] = field(default_factory=tuple)


Document = PurchaseOrder | Acknowledgment | ShipNotice | FunctionalAck
