"""The one reader of the replenishment rule's inputs, for both of its callers.

`Replenishment.propose` reads Odoo and the store and calls
`siteops.rules.replenish.propose_replenishment`. The approvals flow
(`siteops.replenish.check_product`, the sync's pass: `services/approvals.py`) and
`siteops reconcile stock` (`services/reconcile.py`, a batch of orderpoints at a time) both
call it, so what they propose for the same Odoo cannot drift apart: the same orderpoints
(active ones of the site's warehouse), the same on-hand, the same central spare (free less
its own minimum), the same suppliers (`product.supplierinfo` valid today, of the variant or
its template, lowest sequence) and the same idea of "already open".

Already open, for a product and site, is either of:
- a siteops request still open (store: `open_key` replenish:<site>:<product>, held until its
  outcome is in Odoo): what the approvals flow asked for, its record drafted or not yet;
- replenishment on its way in Odoo, whoever made it: a `stock.move` into the site's
  warehouse from outside it, neither done nor cancelled (a draft or confirmed transfer, a
  receipt), or a `purchase.order.line` of the site's receipts in draft, sent, to approve or
  purchase with quantity left to receive (a person's RFQ, or one `reconcile stock --apply`
  drafted).
- a replenishment request for it rejected less than `rejected_hold_days` ago (policy,
  site-tunable): the approver said no, and is not asked again at every sync.
Such a product gets no proposal; the next pass after it closes looks again. So nothing is
ever ordered twice for one shortage, at the price of waiting for a partial delivery to
arrive before the rest is proposed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from siteops.config.sites import Registry, Site, get_registry
from siteops.connectors.errors import PermanentError
from siteops.rules.replenish import (
    CentralStock,
    Orderpoint,
    Proposal,
    Skip,
    Supplier,
    open_key_prefix,
    order_quantity,
    propose_replenishment,
)
from siteops.rules.stock import m2o_id, m2o_name

#: Purchase order states whose lines still bring the product in.
OPEN_PO_STATES = ("draft", "sent", "to approve", "purchase")
ORDERPOINT_FIELDS = ["id", "name", "product_id", "product_min_qty", "product_max_qty", "qty_multiple"]


def warehouse(odoo: Any, site: Site) -> dict[str, Any]:
    """The site's `stock.warehouse` (id, stock location, internal and receipt types)."""
    rows = odoo.search_read("stock.warehouse", [("code", "=", site.odoo_warehouse)],
                            ["id", "lot_stock_id", "int_type_id", "in_type_id"], limit=1)
    if not rows:
        raise PermanentError(f"no Odoo warehouse with code {site.odoo_warehouse!r} for site {site.code}",
                             system="odoo", operation="replenishment")
    return dict(rows[0])


@dataclass
class Proposed:
    """What one pass read and what the rule made of it."""

    proposals: list[Proposal]
    skipped: list[Skip]
    #: By product: the orderpoint as the rule saw it, the central stock, the supplier names.
    orderpoints: dict[int, Orderpoint] = field(default_factory=dict)
    central: dict[int, CentralStock] = field(default_factory=dict)
    partners: dict[int, str] = field(default_factory=dict)
    #: Orderpoint rows read, and the last one's id (the reconcile job's cursor).
    read: int = 0
    last_id: int | None = None


class Replenishment:
    """The rule's inputs for one site, read from Odoo (and the store's open requests)."""

    def __init__(self, odoo: Any, site: Site, registry: Registry | None = None) -> None:
        registry = registry or get_registry()
        self.odoo, self.site = odoo, site
        self.wh = warehouse(odoo, site)
        # Policy names the central site; a site that is central (or a network without it)
        # never gets a transfer: it buys.
        self.central_code = str(site.params.get("central_site") or site.code)
        central = registry.get(self.central_code) if self.central_code in registry.codes else None
        self.central_wh = warehouse(odoo, central) if central is not None and central.code != site.code else None
        self.lead_time_days = float(site.params.get("lead_time_days") or 0)

    def domain(self, product_ids: Iterable[int] | None = None) -> list[Any]:
        domain: list[Any] = [("warehouse_id", "=", int(self.wh["id"])), ("active", "=", True)]
        if product_ids is not None:
            domain.append(("product_id", "in", sorted(set(product_ids))))
        return domain

    def count(self) -> int:
        return int(self.odoo.search_count("stock.warehouse.orderpoint", self.domain()))

    def propose(self, product_ids: Iterable[int] | None = None, *, after: int = 0, limit: int | None = None,
                today: dt.date | None = None) -> Proposed:
        """The proposals for the site's orderpoints (these products' only, or `limit` of
        them after id `after`, in id order), and what was skipped and why."""
        from siteops.store.models import utcnow

        kw: dict[str, Any] = {"order": "id asc"} | ({"limit": limit} if limit else {})
        rows = self.odoo.search_read("stock.warehouse.orderpoint", [*self.domain(product_ids), ("id", ">", after)],
                                     ORDERPOINT_FIELDS, **kw)
        out = Proposed([], [], read=len(rows), last_id=int(rows[-1]["id"]) if rows else None)
        pids = sorted({p for p in (m2o_id(r["product_id"]) for r in rows) if p})
        if not pids:
            return out
        here = self.quantities(int(self.wh["id"]), pids)
        ops = [Orderpoint(pid, float(r["product_min_qty"] or 0), float(r["product_max_qty"] or 0),
                          float(r["qty_multiple"] or 1), here.get(pid, (0.0, 0.0))[0], name=str(r.get("name") or ""),
                          product_name=m2o_name(r["product_id"]) or str(pid))
               for r in rows if (pid := m2o_id(r["product_id"]))]
        # Only what is short needs the rest of the reads (a pass over a healthy site is two reads).
        short = sorted({op.product_id for op in ops if order_quantity(op) > 0})
        if not short:
            return out
        products = {int(p["id"]): p for p in self.odoo.read("product.product", short, ["standard_price", "categ_id"])}
        ops = [Orderpoint(op.product_id, op.min_qty, op.max_qty, op.multiple, op.available,
                          float(products.get(op.product_id, {}).get("standard_price") or 0),
                          m2o_name(products.get(op.product_id, {}).get("categ_id")) or "", op.name, op.product_name)
               for op in ops if op.product_id in short]
        out.orderpoints = {op.product_id: op for op in reversed(ops)}  # the first orderpoint per product
        out.central = self.central_stock(short)
        suppliers, out.partners = self.suppliers(short)
        out.proposals, out.skipped = propose_replenishment(
            self.site.code, ops, central_site=self.central_code, central=out.central, suppliers=suppliers,
            open_products=self.open_products(short), lead_time_days=self.lead_time_days,
            today=today or utcnow().date())
        return out

    # -- the reads ------------------------------------------------------------------------

    def quantities(self, wh: int, pids: list[int]) -> dict[int, tuple[float, float]]:
        """product -> (on hand, free: on hand less reserved) in the warehouse's internal locations."""
        totals: dict[int, tuple[float, float]] = {}
        for q in self.odoo.search_read("stock.quant", [("product_id", "in", pids),
                                                       ("location_id.warehouse_id", "=", wh),
                                                       ("location_id.usage", "=", "internal")],
                                       ["product_id", "quantity", "reserved_quantity"]):
            if (pid := m2o_id(q["product_id"])) is not None:
                qty, free = totals.get(pid, (0.0, 0.0))
                n = float(q["quantity"] or 0)
                totals[pid] = (qty + n, free + n - float(q.get("reserved_quantity") or 0))
        return totals

    def central_stock(self, pids: list[int]) -> dict[int, CentralStock]:
        """The central warehouse's free quantity and its own minimum (the highest of its orderpoints)."""
        if self.central_wh is None:
            return {}
        cwh = int(self.central_wh["id"])
        mins: dict[int, float] = {}
        for o in self.odoo.search_read("stock.warehouse.orderpoint", [("warehouse_id", "=", cwh),
                                                                      ("product_id", "in", pids)],
                                       ["product_id", "product_min_qty"]):
            if (pid := m2o_id(o["product_id"])) is not None:
                mins[pid] = max(mins.get(pid, 0.0), float(o["product_min_qty"] or 0))
        there = self.quantities(cwh, pids)
        return {pid: CentralStock(there.get(pid, (0.0, 0.0))[1], mins.get(pid, 0.0)) for pid in pids}

    def suppliers(self, pids: list[int]) -> tuple[dict[int, list[Supplier]], dict[int, str]]:
        """product -> its `product.supplierinfo` rows valid today; partner id -> name.

        As Odoo's own `_select_seller` reads them: a row is keyed on the product's template
        and holds for every variant when its product_id is empty (what the product form
        makes), for that variant alone otherwise; a row outside its start and end dates
        does not count."""
        templates = {pid: t for r in self.odoo.read("product.product", pids, ["product_tmpl_id"])
                     if (pid := m2o_id(r["id"])) is not None and (t := m2o_id(r.get("product_tmpl_id"))) is not None}
        by_template: dict[int, list[int]] = {}
        for pid, tmpl in templates.items():
            by_template.setdefault(tmpl, []).append(pid)
        today = dt.date.today().isoformat()
        infos = [i for i in self.odoo.search_read(
            "product.supplierinfo", ["|", ("product_id", "in", pids),
                                     "&", ("product_id", "=", False), ("product_tmpl_id", "in", sorted(by_template))],
            ["partner_id", "product_id", "product_tmpl_id", "sequence", "price", "delay", "min_qty", "date_start",
             "date_end"])
            if (i.get("date_start") or today) <= today <= (i.get("date_end") or today)]
        partner_ids = sorted({p for p in (m2o_id(i["partner_id"]) for i in infos) if p})
        partners = {int(r["id"]): r for r in (self.odoo.read("res.partner", partner_ids, ["name", "x_vendor_class"])
                                              if partner_ids else [])}
        out: dict[int, list[Supplier]] = {}
        for i in infos:
            variant, partner = m2o_id(i["product_id"]), m2o_id(i["partner_id"])
            if not partner:
                continue
            held = [variant] if variant else by_template.get(m2o_id(i.get("product_tmpl_id")) or 0, [])
            for pid in held:
                out.setdefault(pid, []).append(Supplier(partner, int(i["sequence"] or 0), float(i["price"] or 0),
                                                        int(i["delay"] or 0),
                                                        str(partners.get(partner, {}).get("x_vendor_class") or ""),
                                                        float(i.get("min_qty") or 0)))
        return out, {pid: str(r.get("name") or "") for pid, r in partners.items()}

    def open_products(self, pids: list[int]) -> dict[int, str]:
        """product -> what is already open for it at this site (see the module's docstring)."""
        from siteops.store import approvals

        wh, wanted = int(self.wh["id"]), set(pids)
        prefix = open_key_prefix(self.site.code)
        out: dict[int, str] = {}
        for key in approvals.open_keys(self.site.code, prefix):
            if (held := int(key.removeprefix(prefix))) in wanted:
                out[held] = "a siteops request is open"
        hold = dt.timedelta(days=float(self.site.params.get("rejected_hold_days") or 0))
        if hold:
            since = dt.datetime.now(dt.UTC) - hold
            for pid, r in approvals.rejected_replenishment(self.site.code, wanted - set(out), since).items():
                when = r["rejected_at"]
                out[pid] = (f"request #{r['request_id']} was rejected by {r['rejected_by'] or '?'} on "
                            f"{when:%Y-%m-%d %H:%M}Z; proposed again from {when + hold:%Y-%m-%d %H:%M}Z")
        for m in self.odoo.search_read("stock.move", [("product_id", "in", pids),
                                                      ("state", "not in", ["done", "cancel"]),
                                                      ("location_dest_id.warehouse_id", "=", wh),
                                                      ("location_id.warehouse_id", "!=", wh)],
                                       ["product_id", "picking_id", "state"]):
            if (moved := m2o_id(m["product_id"])) is not None and moved not in out:
                out[moved] = f"transfer {m2o_name(m.get('picking_id')) or 'move'} is {m.get('state')}"
        for line in self.odoo.search_read("purchase.order.line", [
                ("product_id", "in", pids), ("state", "in", list(OPEN_PO_STATES)),
                ("order_id.picking_type_id.warehouse_id", "=", wh)],
                ["product_id", "order_id", "state", "product_qty", "qty_received"]):
            ordered = m2o_id(line["product_id"])
            left = float(line["product_qty"] or 0) - float(line.get("qty_received") or 0)
            if ordered is not None and ordered not in out and left > 0:
                out[ordered] = f"purchase order {m2o_name(line.get('order_id')) or '?'} is {line.get('state')}"
        return out
