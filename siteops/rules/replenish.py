"""Replenishment decisions: pure rules, no I/O.

For a site's products below their orderpoint minimum, `propose_replenishment` proposes an
internal transfer from the central warehouse when the central warehouse can spare enough
(its free quantity less its own minimum covers the need), otherwise a purchase order to
the product's preferred supplier (`product.supplierinfo`, lowest sequence). `siteops
reconcile stock` calls the same function on the same inputs (one reader:
`siteops.services.replenishment`), so the two never disagree on what is short.

Quantities follow Odoo's orderpoint arithmetic: order up to the maximum (at least up to
the minimum), rounded UP to the orderpoint's multiple. A product and site that already
have an open request get no second one: "open" is what the caller passes as
`open_products` (the reader: a siteops request still open, or replenishment already on
its way in Odoo, whoever made it).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

TRANSFER = "transfer"
PURCHASE = "purchase"
#: Why a short product got no proposal.
OPEN, NO_SUPPLIER = "open", "no_supplier"


def open_key(site: str, product_id: int) -> str:
    """The business key of a replenishment request: one open request per product and site."""
    return f"replenish:{site}:{product_id}"


def open_key_prefix(site: str) -> str:
    return f"replenish:{site}:"


@dataclass(frozen=True)
class Orderpoint:
    """One `stock.warehouse.orderpoint` of the site, with what the site has of the product."""

    product_id: int
    min_qty: float
    max_qty: float
    multiple: float
    #: What the site has on hand (its internal locations). Replenishment already on its way
    #: is not added here: it makes the product open (`open_products`), so never ordered twice.
    available: float
    unit_cost: float = 0.0
    category: str = ""
    #: For reports only (the orderpoint's name, the product's display name).
    name: str = ""
    product_name: str = ""


@dataclass(frozen=True)
class CentralStock:
    """What the central warehouse holds of one product."""

    free_qty: float  # on hand less reserved
    min_qty: float = 0.0  # its own orderpoint minimum: never given away


@dataclass(frozen=True)
class Supplier:
    """One `product.supplierinfo` row."""

    partner_id: int
    sequence: int = 10
    price: float = 0.0
    delay_days: int = 0
    vendor_class: str = ""
    min_qty: float = 0.0  # the least this price list sells: a smaller order is not its


@dataclass(frozen=True)
class Proposal:
    kind: str  # transfer | purchase
    site: str
    product_id: int
    quantity: float
    amount: float
    #: transfer: the central site code; purchase: the supplier's partner id.
    source_site: str | None
    partner_id: int | None
    scheduled: dt.date
    category: str
    vendor_class: str
    why: str

    @property
    def key(self) -> str:
        """One open request per product and site (the business key of the request)."""
        return open_key(self.site, self.product_id)


@dataclass(frozen=True)
class Skip:
    """A product below its minimum that got no proposal, and why (`OPEN`, `NO_SUPPLIER`)."""

    product_id: int
    reason: str
    quantity: float
    why: str

    def __str__(self) -> str:
        return self.why


def order_quantity(op: Orderpoint) -> float:
    """How much to order for `op` (0 when not below its minimum): up to the maximum, a
    multiple of `multiple` (rounded up, as Odoo's `_get_multiple_rounding` does)."""
    if op.available >= op.min_qty:
        return 0.0
    target = max(op.max_qty, op.min_qty)
    need = target - op.available
    multiple = op.multiple if op.multiple > 0 else 1.0
    return float(math.ceil(round(need / multiple, 9)) * multiple)


def preferred_supplier(suppliers: Iterable[Supplier]) -> Supplier | None:
    """Lowest sequence wins; ties by partner id (stable)."""
    ranked = sorted(suppliers, key=lambda s: (s.sequence, s.partner_id))
    return ranked[0] if ranked else None


def propose_replenishment(
    site: str,
    orderpoints: Iterable[Orderpoint],
    *,
    central_site: str,
    central: Mapping[int, CentralStock],
    suppliers: Mapping[int, Iterable[Supplier]],
    open_products: Mapping[int, str] | None = None,
    lead_time_days: float = 0,
    today: dt.date,
) -> tuple[list[Proposal], list[Skip]]:
    """Proposals for `site`'s products below their minimum, and a note per product skipped.

    Inputs (all plain data; the caller reads Odoo and the store):
    - `orderpoints`: the site's orderpoints with what the site has of each product;
    - `central_site`: policy's central warehouse (`[policy.defaults] central_site`); the
      central site itself is never replenished from itself (it always buys);
    - `central`: product id -> the central warehouse's free quantity and own minimum;
    - `suppliers`: product id -> its `product.supplierinfo` rows;
    - `open_products`: product id -> what is already open for it at this site (a request,
      a transfer or RFQ on its way): not duplicated;
    - `lead_time_days`: the site's lead time (policy, site-tunable) for the transfer date;
      a purchase uses the supplier's own delay when it has one.
    """
    # A second orderpoint of the same product (another location of the site) would be a
    # second request under the same key: the first one proposed holds it.
    already = dict(open_products or {})
    proposals: list[Proposal] = []
    skipped: list[Skip] = []
    for op in orderpoints:
        qty = order_quantity(op)
        if qty <= 0:
            continue
        if op.product_id in already:
            skipped.append(Skip(op.product_id, OPEN, qty,
                                f"product {op.product_id}: already open ({already[op.product_id]})"))
            continue
        stock = central.get(op.product_id)
        spare = (stock.free_qty - stock.min_qty) if stock is not None else 0.0
        if site != central_site and spare >= qty:
            proposals.append(Proposal(
                TRANSFER, site, op.product_id, qty, round(qty * op.unit_cost, 2), central_site, None,
                today + dt.timedelta(days=math.ceil(lead_time_days)), op.category, "",
                f"{op.available:g} < min {op.min_qty:g}; {central_site} can spare {spare:g}"))
            already[op.product_id] = "proposed in this pass"
            continue
        rows = list(suppliers.get(op.product_id, ()))
        # As Odoo's _select_seller: a price list whose minimum is above the quantity does not
        # sell it (Odoo's own procurement would find no vendor either).
        supplier = preferred_supplier(s for s in rows if s.min_qty <= qty)
        if supplier is None:
            why = (f"every supplier's minimum is above it (the least: {min(s.min_qty for s in rows):g})" if rows
                   else "no supplier is set (product.supplierinfo)")
            skipped.append(Skip(op.product_id, NO_SUPPLIER, qty,
                                f"product {op.product_id}: short by {qty:g}, {central_site} can spare {spare:g} "
                                f"and {why}"))
            continue
        price = supplier.price or op.unit_cost
        days = supplier.delay_days or lead_time_days
        proposals.append(Proposal(
            PURCHASE, site, op.product_id, qty, round(qty * price, 2), None, supplier.partner_id,
            today + dt.timedelta(days=math.ceil(days)), op.category, supplier.vendor_class,
            f"{op.available:g} < min {op.min_qty:g}; {central_site} can spare {max(spare, 0):g} of {qty:g}"))
        already[op.product_id] = "proposed in this pass"
    return proposals, skipped
