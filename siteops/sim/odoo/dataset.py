"""A realistic multi-site distribution data set, with planted conditions and their ground truth.

Deterministic from `seed` (and `now`), scaled by `scale`. One warehouse per site (coded
as the site's `odoo_warehouse`), its locations and operation types, products,
partners, purchase and sale orders with their receipts and deliveries, internal
transfers, quants, reordering rules, and the site's responsible users.

Planted conditions sit far from every threshold (at least 3x past it; healthy records
at most 0.3x of it), so a scan finds exactly the truth whatever minute it runs. The
definitions the truth follows are written into the truth file (`definitions`).
"""

from __future__ import annotations

import gc
import itertools
import json
import math
import random
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from siteops.sim.odoo.store import Database

DT = "%Y-%m-%d %H:%M:%S"
MAD_K = 0.6745  # robust z = 0.6745 * |x - median| / MAD
PLANT_FACTOR = 3.0  # planted conditions at >= 3x their threshold
HEALTHY_FACTOR = 0.3  # healthy records at <= 0.3x
HISTORY_DAYS = 60  # done moves are spread over this many days
MIN_HISTORY = 12  # moves needed before a product's history says anything

DEFAULT_PARAMS: dict[str, Any] = {
    "transfer_aging_hours": 48, "receipt_grace_days": 2, "backorder_aging_days": 7,
    "variance_qty_threshold": 5.0, "variance_value_review": 250.0, "variance_value_finance": 2500.0,
    "anomaly_mad_score": 6.0,
}

DEFINITIONS = {
    "aging_transfers": "stock.picking with picking_type_code='internal', state in (waiting, confirmed, "
                       "assigned), scheduled_date < now - transfer_aging_hours",
    "overdue_receipts": "stock.picking with picking_type_code='incoming', state not in (done, cancel), "
                        "scheduled_date < now - receipt_grace_days",
    "aging_backorders": "stock.picking with backorder_id set, state not in (done, cancel), "
                        "scheduled_date < now - backorder_aging_days",
    "ready_to_ship": "stock.picking with picking_type_code='outgoing' and state='assigned'",
    "stock_anomalies.negative_quant": "stock.quant in the warehouse's internal locations with quantity < 0",
    "stock_anomalies.reserved_above_on_hand": "stock.quant with quantity >= 0 and reserved_quantity > quantity",
    "stock_anomalies.count_variance_review": "stock.quant with inventory_quantity_set, "
                                             "|inventory_diff_quantity| > variance_qty_threshold and "
                                             "variance_value_review < |diff| * standard_price <= "
                                             "variance_value_finance",
    "stock_anomalies.count_variance_finance": "as review, with |diff| * standard_price > variance_value_finance",
    "stock_anomalies.abnormal_adjustment": "done stock.move with is_inventory=True whose quantity has a robust "
                                           "z-score 0.6745*|q - median|/MAD > anomaly_mad_score over the done "
                                           "moves of the same product in the same warehouse (last 60 days)",
}


@dataclass(frozen=True)
class SiteSpec:
    """What the generator needs of a site (siteops.config.sites.Site has these attributes)."""

    code: str
    name: str
    odoo_warehouse: str
    responsible: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)


def _sites(sites: Any) -> list[Any]:
    if hasattr(sites, "sites"):  # a siteops.config.sites.Registry
        sites = sites.sites
    if isinstance(sites, Mapping):
        sites = list(sites.values())
    return list(sites)


def _param(site: Any, name: str) -> Any:
    params = getattr(site, "params", None) or {}
    return params.get(name, DEFAULT_PARAMS[name])


WORDS_A = ["Steel", "Brass", "Nylon", "Copper", "Galvanised", "Stainless", "PVC", "Aluminium", "Heavy-duty",
           "Compact", "Industrial", "Flexible", "Insulated", "Threaded", "Sealed"]
WORDS_B = ["Bolt", "Washer", "Hinge", "Bracket", "Cable", "Pipe", "Valve", "Fitting", "Switch", "Socket",
           "Clamp", "Anchor", "Hose", "Relay", "Fuse", "Gasket", "Coupling", "Connector"]
CATEGORIES = [("Fasteners", "FAS"), ("Plumbing", "PLU"), ("Electrical", "ELE"), ("Hardware", "HAR"),
              ("Tools", "TOO")]
CITIES = ["Springfield", "Riverton", "Lakeside", "Fairview", "Greenville", "Oakdale", "Hillcrest", "Bayview"]
SUFFIXES = ["Supply", "Trading", "Industries", "Distribution", "Wholesale", "Group", "& Sons", "Works"]


class Generator:
    def __init__(self, sites: Any, *, seed: int = 7, scale: float = 1.0, version: int = 17,
                 now: datetime | None = None, db_name: str = "demo", login: str = "admin",
                 password: str = "admin", api_key: str = "admin") -> None:
        self.sites = _sites(sites)
        self.approvals = getattr(sites, "approvals", None)
        if self.approvals is None:  # a list of sites: the approvers of sites.toml, if it loads
            try:
                from siteops.config.sites import load_registry

                self.approvals = load_registry().approvals
            except Exception:  # the registry is optional for the simulator
                self.approvals = None
        self.edi_refs = _edi_vendor_refs(sites)
        self.central = str((getattr(sites, "defaults", None) or {}).get("central_site", "CW"))
        if not self.sites:
            raise ValueError("the data set needs at least one site")
        self.rng = random.Random(seed)
        self.seed = seed
        self.scale = max(0.05, float(scale))
        self.now = (now or datetime.now(UTC)).replace(microsecond=0, tzinfo=None)
        self.db = Database(db_name, version, now=None)
        self.version = version
        self.creds = (login, password, api_key)
        self.truth: dict[str, Any] = {}
        self.history: dict[tuple[int, int], list[int]] = {}  # (warehouse, product) -> done move ids

    # -- helpers --------------------------------------------------------------------------

    def ts(self, delta: timedelta) -> str:
        return (self.now + delta).strftime(DT)

    def n(self, base: float, minimum: int = 1, power: float = 1.0) -> int:
        return max(minimum, round(base * self.scale ** power))

    def ins(self, _model: str, /, **values: Any) -> int:
        # Stamps from the generation clock, not the wall clock: same seed and now, same rows.
        values.setdefault("create_date", self.now.strftime(DT))
        # Written once with 17's names; 16 and 19 name (or lack) a few fields differently.
        return self.db.insert(_model, self.db.adapt(_model, values), uid=2)

    def xmlid(self, module: str, name: str, model: str, res_id: int) -> None:
        self.ins("ir.model.data", module=module, name=name, model=model, res_id=res_id, noupdate=True)

    # -- the network ----------------------------------------------------------------------

    def build(self) -> tuple[Database, dict[str, Any]]:
        self._base()
        self._catalog()
        self._partners()
        self.site_stocked: dict[str, list[int]] = {}
        self.site_users: dict[str, list[int]] = {}
        for site in self.sites:
            self._site(site)
            self.site_stocked[site.code] = list(self.stocked)
            self.site_users[site.code] = list(self.users)
        self._replenishment()
        self._foreign_currency()
        self.truth = {
            "replenishment": self.replenishment_truth,
            "currencies": self.currency_truth,
            "seed": self.seed, "scale": self.scale, "odoo_version": self.version,
            "now": self.now.strftime(DT), "db": self.db.name, "definitions": DEFINITIONS,
            "plant_factor": PLANT_FACTOR, "healthy_factor": HEALTHY_FACTOR,
            "sites": self.truth,
            "counts": {name: len(t) for name, t in self.db.tables.items()},
        }
        return self.db, self.truth

    def _base(self) -> None:
        db = self.db
        login, password, api_key = self.creds
        for name, mdef in db.models.items():
            self.ins("ir.model", name=mdef.description, model=name)
        # Postal addresses (fixed, no random draws: the rest of the data set is unchanged) so a
        # carrier can ship from the warehouses (partner 1) to the customers.
        self.ins("res.partner", name="SiteOps Distribution", complete_name="SiteOps Distribution",
                 is_company=True, company_type="company", email="info@siteops.example",
                 street="100 Depot Road", city="Springfield", zip="62701", country_code="US")
        # Currencies first (their own table: no other id moves). USD is the company's; EUR
        # has dated rates and one vendor (see _foreign_currency).
        self.usd = self.ins("res.currency", name="USD", full_name="United States dollar", symbol="$",
                            position="before", rounding=0.01, currency_unit_label="Dollars",
                            currency_subunit_label="Cents")
        self.eur = self.ins("res.currency", name="EUR", full_name="Euro", symbol="\u20ac", position="after",
                            rounding=0.01, currency_unit_label="Euros", currency_subunit_label="Cents")
        self.ins("res.company", name="SiteOps Distribution", partner_id=1, email="info@siteops.example",
                 po_double_validation="two_step", po_double_validation_amount=10000.0, currency_id=self.usd)
        self.ins("res.partner", name="OdooBot", complete_name="OdooBot", active=False, company_id=1)
        self.ins("res.partner", name="Mitchell Admin", complete_name="Mitchell Admin", company_id=1,
                 email="admin@siteops.example")
        self.ins("res.users", name="OdooBot", login="__system__", partner_id=2, company_id=1, active=False,
                 company_ids=(1,))
        uid = self.ins("res.users", name="Mitchell Admin", login=login, partner_id=3, company_id=1,
                       company_ids=(1,), tz="Europe/Brussels", email="admin@siteops.example")
        db.passwords[uid] = password
        db.api_keys[api_key] = uid
        self.xmlid("base", "main_company", "res.company", 1)
        self.xmlid("base", "main_partner", "res.partner", 1)
        self.xmlid("base", "user_root", "res.users", 1)
        self.xmlid("base", "user_admin", "res.users", uid)
        for xml, name, summary in [("mail_activity_data_todo", "To-Do", ""), ("mail_activity_data_call", "Call", ""),
                                   ("mail_activity_data_email", "Email", ""),
                                   ("mail_activity_data_warning", "Exception", "Check")]:
            tid = self.ins("mail.activity.type", name=name, summary=summary or False)
            self.xmlid("mail", xml, "mail.activity.type", tid)
        self.uom_unit = self.ins("uom.uom", name="Units", factor=1.0, uom_type="reference")
        self.ins("uom.uom", name="Dozens", factor=1 / 12, uom_type="bigger")
        self.xmlid("uom", "product_uom_unit", "uom.uom", self.uom_unit)
        loc = self.ins
        self.loc_physical = loc("stock.location", name="Physical Locations", complete_name="Physical Locations",
                                usage="view", company_id=False)
        partners = loc("stock.location", name="Partners", complete_name="Partners", usage="view")
        self.loc_vendors = loc("stock.location", name="Vendors", complete_name="Partners/Vendors",
                               usage="supplier", location_id=partners)
        self.loc_customers = loc("stock.location", name="Customers", complete_name="Partners/Customers",
                                 usage="customer", location_id=partners)
        virtual = loc("stock.location", name="Virtual Locations", complete_name="Virtual Locations", usage="view")
        self.loc_inventory = loc("stock.location", name="Inventory adjustment",
                                 complete_name="Virtual Locations/Inventory adjustment", usage="inventory",
                                 location_id=virtual, company_id=1)
        loc("stock.location", name="Scrap", complete_name="Virtual Locations/Scrap", usage="inventory",
            location_id=virtual, scrap_location=True, company_id=1)
        self.loc_transit = loc("stock.location", name="Inter-warehouse transit",
                               complete_name="Physical Locations/Inter-warehouse transit", usage="transit",
                               location_id=self.loc_physical, company_id=1)
        self.xmlid("stock", "stock_location_suppliers", "stock.location", self.loc_vendors)
        self.xmlid("stock", "stock_location_customers", "stock.location", self.loc_customers)
        self.xmlid("stock", "stock_location_inventory", "stock.location", self.loc_inventory)
        self.carriers = [self.ins("delivery.carrier", name=n, delivery_type="fixed", fixed_price=p, company_id=1)
                         for n, p in [("SimShip Ground", 9.5), ("SimShip Express", 24.0), ("SimFreight LTL", 85.0)]]

    def _catalog(self) -> None:
        rng = self.rng
        root = self.ins("product.category", name="All", complete_name="All")
        saleable = self.ins("product.category", name="Saleable", complete_name="All / Saleable", parent_id=root)
        cats = [(self.ins("product.category", name=n, complete_name=f"All / Saleable / {n}", parent_id=saleable),
                 prefix) for n, prefix in CATEGORIES]
        self.products: list[int] = []
        self.storable: list[int] = []
        self.templates: dict[int, int] = {}  # product -> its template
        count = self.n(150, 20, power=0.5)
        for i in range(count):
            categ, prefix = cats[i % len(cats)]
            kind = "service" if i % 25 == 24 else ("consu" if i % 10 == 9 else "stock")
            cost = round(math.exp(rng.gauss(math.log(18), 0.9)), 2)
            vals: dict[str, Any] = dict(
                name=f"{rng.choice(WORDS_A)} {rng.choice(WORDS_B)} {rng.choice([6, 8, 10, 12, 16, 20, 25])}mm",
                default_code=f"{prefix}-{i + 1:05d}", categ_id=categ, uom_id=self.uom_unit, uom_po_id=self.uom_unit,
                standard_price=cost, list_price=round(cost * rng.uniform(1.3, 1.9), 2), company_id=False,
                barcode=f"20{i + 1:010d}", weight=round(rng.uniform(0.01, 5), 2))
            if self.version <= 17:
                t = {"stock": "product", "consu": "consu", "service": "service"}[kind]
                vals.update(type=t, detailed_type=t)
            else:
                vals.update(type="service" if kind == "service" else "consu", is_storable=kind == "stock")
            tmpl = self.ins("product.template", name=vals["name"], default_code=vals["default_code"], categ_id=categ,
                            uom_id=self.uom_unit, list_price=vals["list_price"], standard_price=cost,
                            company_id=False, type=vals["type"])
            pid = self.ins("product.product", product_tmpl_id=tmpl, **vals)
            self.templates[pid] = tmpl
            self.products.append(pid)
            if kind == "stock":
                self.storable.append(pid)

    def _partners(self) -> None:
        rng = self.rng
        self.vendors = []
        self.customers = []
        for i in range(self.n(30, 5, power=0.5)):
            name = f"{rng.choice(CITIES)} {rng.choice(WORDS_B)} {rng.choice(SUFFIXES)}"
            self.vendors.append(self.ins("res.partner", name=name, complete_name=name, is_company=True,
                                         company_type="company", supplier_rank=1, ref=f"V{i + 1:04d}",
                                         email=f"orders{i + 1}@vendor.example", city=rng.choice(CITIES)))
        for i in range(self.n(200, 10, power=0.5)):
            name = f"{rng.choice(CITIES)} {rng.choice(['Builders', 'Plumbing', 'Electric', 'Maintenance', 'Homes'])}" \
                   f" {rng.choice(SUFFIXES)}"
            self.customers.append(self.ins("res.partner", name=name, complete_name=name, is_company=True,
                                           company_type="company", customer_rank=1, ref=f"C{i + 1:05d}",
                                           email=f"buyer{i + 1}@customer.example", city=rng.choice(CITIES),
                                           street=f"{i + 1} Market Street", zip=f"{10000 + 7 * i:05d}",
                                           country_code="US",
                                           # From the index, not the rng: the rest of the data set stays as it was.
                                           x_tier="gold" if i % 10 == 0 else "silver" if i % 4 == 1 else "standard"))

    # -- one site -------------------------------------------------------------------------

    def _site(self, site: Any) -> None:
        rng = self.rng
        code = site.odoo_warehouse
        users = []
        for login in getattr(site, "responsible", ()) or ():
            found = self.db.tables["res.users"].lookup("login", login)
            if found:
                users.append(next(iter(found)))
                continue
            name = login.replace(".", " ").title()
            partner = self.ins("res.partner", name=name, complete_name=name, company_id=1,
                               email=f"{login}@siteops.example")
            uid = self.ins("res.users", name=name, login=login, partner_id=partner, company_id=1,
                           company_ids=(1,), tz="Europe/Brussels", email=f"{login}@siteops.example")
            self.db.passwords[uid] = login  # demo users log in with their login as password
            users.append(uid)
        self.users = users or [2]
        view = self.ins("stock.location", name=code, complete_name=code, usage="view",
                        location_id=self.loc_physical, company_id=1)
        stock = self.ins("stock.location", name="Stock", complete_name=f"{code}/Stock", location_id=view,
                         company_id=1, replenish_location=True)
        shelves = [self.ins("stock.location", name=f"Shelf {i}", complete_name=f"{code}/Stock/Shelf {i}",
                            location_id=stock, company_id=1) for i in (1, 2, 3)]
        wh = self.ins("stock.warehouse", name=site.name, code=code, company_id=1, partner_id=1,
                      view_location_id=view, lot_stock_id=stock, sequence=10 * (len(self.truth) + 1))
        for lid in (view, stock, *shelves):
            self.db.tables["stock.location"].update(lid, {"warehouse_id": wh})
        types = {}
        for i, (ptype, name, seq, src, dst) in enumerate([
                ("incoming", "Receipts", "IN", self.loc_vendors, stock),
                ("outgoing", "Delivery Orders", "OUT", stock, self.loc_customers),
                ("internal", "Internal Transfers", "INT", stock, stock)]):
            types[ptype] = self.ins("stock.picking.type", name=name, code=ptype, sequence_code=seq, sequence=i + 1,
                                    warehouse_id=wh, company_id=1, default_location_src_id=src,
                                    default_location_dest_id=dst)
        self.db.tables["stock.warehouse"].update(wh, {"in_type_id": types["incoming"], "out_type_id":
                                                      types["outgoing"], "int_type_id": types["internal"]})
        self.xmlid("siteops_sim", f"warehouse_{code.lower()}", "stock.warehouse", wh)
        self.ctx = {"wh": wh, "code": code, "stock": stock, "shelves": shelves, "types": types}
        stocked = [p for p in self.storable if rng.random() < 0.7] or self.storable[:1]
        self.base_qty = {p: rng.randint(20, 60) for p in stocked}
        self.popularity = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(len(stocked))))
        self.stocked = stocked
        truth: dict[str, Any] = {"warehouse": {"code": code, "id": wh}, "aging_transfers": [],
                                 "overdue_receipts": [], "aging_backorders": [], "ready_to_ship": [],
                                 "stock_anomalies": {k: [] for k in (
                                     "negative_quant", "reserved_above_on_hand", "count_variance_review",
                                     "count_variance_finance", "abnormal_adjustment")}}
        self.site_truth = truth
        self.history = {}
        self._purchases(site)
        self._sales(site)
        self._internal(site)
        self._quants(site)
        self._adjustments(site)
        self._orderpoints()
        self._activities()
        self.truth[site.code] = _as_truth(truth)

    def _open_date(self, threshold: timedelta, planted: bool) -> str:
        """Scheduled date of an open document: far past the threshold, or far from it."""
        rng = self.rng
        if planted:
            return self.ts(-threshold * rng.uniform(PLANT_FACTOR, 2 * PLANT_FACTOR))
        if rng.random() < 0.5:
            return self.ts(-threshold * rng.uniform(0, HEALTHY_FACTOR))
        return self.ts(timedelta(hours=rng.uniform(1, 24 * 10)))

    def _done_date(self) -> str:
        return self.ts(-timedelta(days=self.rng.uniform(1, HISTORY_DAYS - 1)))

    def _lines(self, k: int) -> list[tuple[int, int]]:
        rng = self.rng
        # ABC demand: a few products move a lot (Zipf-like popularity), most move rarely.
        products = list(dict.fromkeys(rng.choices(self.stocked, cum_weights=self.popularity, k=k)))
        return [(p, max(1, round(self.base_qty[p] * rng.uniform(0.75, 1.25)))) for p in products]

    def _picking(self, kind: str, state: str, scheduled: str, *, partner: Any = False, origin: Any = False,
                 lines: list[tuple[int, int]], backorder_of: Any = False, **extra: Any) -> int:
        c = self.ctx
        ptype = c["types"][kind]
        stock = c["stock"]
        src, dst = {"incoming": (self.loc_vendors, stock), "outgoing": (stock, self.loc_customers),
                    "internal": (stock, self.rng.choice(c["shelves"]))}[kind]
        seq = {"incoming": "IN", "outgoing": "OUT", "internal": "INT"}[kind]
        done = state == "done"
        pid = self.ins("stock.picking", name=self.db.next_name(f"{c['code']}/{seq}/"), state=state,
                       picking_type_id=ptype, location_id=src, location_dest_id=dst, partner_id=partner,
                       origin=origin, scheduled_date=scheduled, date=scheduled, company_id=1,
                       date_done=scheduled if done else False, user_id=self.rng.choice(self.users),
                       backorder_id=backorder_of, move_type="direct",
                       priority="1" if self.rng.random() < 0.1 else "0", create_date=scheduled, **extra)
        move_state = {"draft": "draft", "waiting": "waiting", "confirmed": "confirmed", "assigned": "assigned",
                      "done": "done", "cancel": "cancel"}[state]
        for seq_no, (product, qty) in enumerate(lines):
            mid = self.ins("stock.move", name=self.db.tables["product.product"].rows[product]["name"],
                           reference=self.db.tables["stock.picking"].rows[pid]["name"], state=move_state,
                           product_id=product, product_uom_qty=float(qty), product_qty=float(qty),
                           quantity=float(qty) if state in ("assigned", "done") else 0.0, picked=done,
                           product_uom=self.uom_unit, date=scheduled, picking_id=pid, picking_type_id=ptype,
                           location_id=src, location_dest_id=dst, partner_id=partner, company_id=1,
                           warehouse_id=c["wh"], sequence=10 + seq_no, origin=origin, create_date=scheduled)
            if done:
                self.history.setdefault((c["wh"], product), []).append(mid)
        return pid

    def _purchases(self, site: Any) -> None:
        rng = self.rng
        grace = timedelta(days=_param(site, "receipt_grace_days"))
        t = self.site_truth
        for _ in range(self.n(80)):
            vendor = rng.choice(self.vendors)
            r = rng.random()
            state = ("draft" if r < 0.08 else "sent" if r < 0.12 else "to approve" if r < 0.16
                     else "cancel" if r < 0.20 else "done" if r < 0.25 and self.version < 19 else "purchase")
            lines = self._lines(rng.randint(1, 4))
            ordered = self.ts(-timedelta(days=rng.uniform(3, 80)))
            receipt_state = None
            if state in ("purchase", "done"):
                receipt_state = "done" if state == "done" or rng.random() < 0.7 else "assigned"
            # The first open receipt is always planted so that every site has one.
            planted = receipt_state == "assigned" and (rng.random() < 0.2 or not t["overdue_receipts"])
            planned = self._open_date(grace, planted) if receipt_state == "assigned" else \
                self._done_date() if receipt_state == "done" else self.ts(timedelta(days=rng.uniform(2, 20)))
            po = self.ins("purchase.order", name=self.db.next_name("P"), partner_id=vendor, state=state,
                          date_order=ordered, date_planned=planned, company_id=1, user_id=rng.choice(self.users),
                          currency_id=self.usd, currency_rate=1.0,
                          picking_type_id=self.ctx["types"]["incoming"], create_date=ordered,
                          date_approve=ordered if state in ("purchase", "done") else False,
                          receipt_status={"done": "full", "assigned": "pending"}.get(receipt_state or "", False),
                          **({"locked": state == "purchase" and rng.random() < 0.2} if self.version >= 19 else {}))
            untaxed = 0.0
            line_ids = []
            for product, qty in lines:
                price = self.db.tables["product.product"].rows[product]["standard_price"]
                sub = round(qty * price, 2)
                untaxed += sub
                uom = "product_uom_id" if self.version >= 19 else "product_uom"
                line_ids.append(self.ins("purchase.order.line", order_id=po, product_id=product,
                                         name=self.db.tables["product.product"].rows[product]["name"],
                                         product_qty=float(qty), product_uom_qty=float(qty), price_unit=price,
                                         price_subtotal=sub, price_total=round(sub * 1.15, 2), date_planned=planned,
                                         qty_received=float(qty) if receipt_state == "done" else 0.0,
                                         company_id=1, **{uom: self.uom_unit}))
            if state == "to approve":
                untaxed = max(untaxed, 10000.0 + rng.uniform(100, 5000))  # above the approval limit
            self.db.tables["purchase.order"].update(po, {
                "amount_untaxed": round(untaxed, 2), "amount_tax": round(untaxed * 0.15, 2),
                "amount_total": round(untaxed * 1.15, 2)})
            if receipt_state:
                pid = self._picking("incoming", receipt_state, planned, partner=vendor,
                                    origin=self.db.tables["purchase.order"].rows[po]["name"], lines=lines,
                                    purchase_id=po)
                for mid, lid in zip(sorted(self.db.tables["stock.move"].lookup("picking_id", pid)), line_ids,
                                    strict=False):
                    self.db.tables["stock.move"].update(mid, {"purchase_line_id": lid})
                if planted:
                    t["overdue_receipts"].append(pid)

    def _sales(self, site: Any) -> None:
        rng = self.rng
        aging = timedelta(days=_param(site, "backorder_aging_days"))
        t = self.site_truth
        for _ in range(self.n(300)):
            customer = rng.choice(self.customers)
            r = rng.random()
            state = "draft" if r < 0.08 else "sent" if r < 0.12 else "cancel" if r < 0.16 else "sale"
            ordered = self.ts(-timedelta(days=rng.uniform(1, HISTORY_DAYS)))
            amount = round(rng.uniform(80, 4000), 2)
            so = self.ins("sale.order", name=self.db.next_name("S"), partner_id=customer, state=state,
                          date_order=ordered, partner_invoice_id=customer, partner_shipping_id=customer,
                          amount_untaxed=amount, amount_tax=round(amount * 0.15, 2),
                          amount_total=round(amount * 1.15, 2), user_id=rng.choice(self.users), company_id=1,
                          warehouse_id=self.ctx["wh"], client_order_ref=f"PO-{rng.randint(10000, 99999)}",
                          invoice_status="to invoice" if state == "sale" else "no", create_date=ordered,
                          carrier_id=rng.choice(self.carriers), locked=state == "sale" and rng.random() < 0.3)
            if self.version <= 16 and state == "sale" and rng.random() < 0.3:
                self.db.tables["sale.order"].update(so, {"state": "done"})  # 16 locks with a state, not a flag
            if state != "sale":
                continue
            r = rng.random()
            pstate = ("done" if r < 0.70 else "assigned" if r < 0.84 else "confirmed" if r < 0.92
                      else "waiting" if r < 0.95 else "cancel")
            scheduled = self._done_date() if pstate in ("done", "cancel") else self._open_date(timedelta(days=2),
                                                                                                False)
            name = self.db.tables["sale.order"].rows[so]["name"]
            lines = self._lines(rng.randint(1, 3))
            pid = self._picking("outgoing", pstate, scheduled, partner=customer, origin=name, lines=lines,
                                sale_id=so, carrier_id=rng.choice(self.carriers))
            self.db.tables["sale.order"].update(so, {"delivery_status": "full" if pstate == "done" else "pending"})
            if pstate == "assigned":
                t["ready_to_ship"].append(pid)
            if pstate == "done" and (rng.random() < 0.08 or not t["aging_backorders"]):
                # A partial delivery left a backorder, still open.
                planted = rng.random() < 0.4 or not t["aging_backorders"]
                bstate = rng.choice(["confirmed", "assigned"])
                bid = self._picking("outgoing", bstate, self._open_date(aging, planted), partner=customer,
                                    origin=name, lines=lines[:1], sale_id=so, backorder_of=pid)
                if planted:
                    t["aging_backorders"].append(bid)
                if bstate == "assigned":
                    t["ready_to_ship"].append(bid)

    def _internal(self, site: Any) -> None:
        rng = self.rng
        aging = timedelta(hours=_param(site, "transfer_aging_hours"))
        for _ in range(self.n(150)):
            r = rng.random()
            state = ("done" if r < 0.68 else "cancel" if r < 0.71 else "draft" if r < 0.74 else "waiting"
                     if r < 0.77 else "confirmed" if r < 0.87 else "assigned")
            planted = state in ("waiting", "confirmed", "assigned") and (
                rng.random() < 0.15 or not self.site_truth["aging_transfers"])
            scheduled = self._done_date() if state in ("done", "cancel") else self._open_date(aging, planted)
            pid = self._picking("internal", state, scheduled, lines=self._lines(rng.randint(1, 2)),
                                origin=f"Replenishment {self.ctx['code']}")
            if planted:
                self.site_truth["aging_transfers"].append(pid)

    def _quants(self, site: Any) -> None:
        rng = self.rng
        t = self.site_truth["stock_anomalies"]
        q_thr = float(_param(site, "variance_qty_threshold"))
        review = float(_param(site, "variance_value_review"))
        finance = float(_param(site, "variance_value_finance"))
        products = self.db.tables["product.product"].rows
        c = self.ctx
        manager = self.users[0]
        rows: list[tuple[dict[str, Any], str | None]] = []
        for product in self.stocked:
            for location in [c["stock"]] + ([rng.choice(c["shelves"])] if rng.random() < 0.4 else []):
                qty = float(rng.randint(20, 400))
                vals: dict[str, Any] = dict(product_id=product, location_id=location, company_id=1,
                                            quantity=qty, reserved_quantity=float(int(qty * rng.uniform(0, 0.3))),
                                            in_date=self._done_date())
                r = rng.random()
                kind = ("negative_quant" if r < 0.025 else "reserved_above_on_hand" if r < 0.05
                        else "counted" if r < 0.17 else None)
                rows.append((vals, kind))
        # Every kind at least once per site, so each scan has something to find everywhere.
        healthy = [i for i, (_, kind) in enumerate(rows) if kind is None]
        rng.shuffle(healthy)
        for wanted in ("negative_quant", "reserved_above_on_hand", "review", "finance"):
            if healthy:
                i = healthy.pop()
                rows[i] = (rows[i][0], wanted)
        for vals, kind in rows:
            qty = vals["quantity"]
            cost = products[vals["product_id"]]["standard_price"]
            if kind == "negative_quant":
                vals.update(quantity=-float(rng.randint(5, 40)), reserved_quantity=0.0)
            elif kind == "reserved_above_on_hand":
                q = float(rng.randint(5, 50))
                vals.update(quantity=q, reserved_quantity=float(math.ceil(q * rng.uniform(1.5, 3)) + 5))
            elif kind in ("counted", "review", "finance"):
                diff, kind = self._count_diff(cost, q_thr, review, finance, force=kind)
                if diff < 0 and qty < -diff:
                    vals["quantity"] = qty = float(-diff + rng.randint(10, 100))
                vals.update(inventory_quantity=qty + diff, inventory_diff_quantity=diff,
                            inventory_quantity_set=True, user_id=manager,
                            inventory_date=self.now.strftime("%Y-%m-%d"))
            qid = self.ins("stock.quant", **vals)
            if kind:
                t[kind].append(qid)

    def _count_diff(self, cost: float, q_thr: float, review: float, finance: float,
                    force: str = "counted") -> tuple[float, str | None]:
        """A count difference: planted at review or finance level, or healthy and small."""
        rng = self.rng
        sign = -1 if rng.random() < 0.7 else 1  # shrinkage is the common case
        r = rng.random()
        if (force == "review" or (force == "counted" and r < 0.25)) and finance >= 9 * review:
            value = math.sqrt(review * finance)  # >= 3x review and <= finance / 3
            # Enough units to pass the quantity threshold 3x over, without passing finance/3.
            diff = max(math.ceil(value / cost), math.ceil(PLANT_FACTOR * q_thr))
            if diff * cost <= finance / PLANT_FACTOR:
                return float(sign * diff), "count_variance_review"
        elif force == "finance" or (force == "counted" and r < 0.40):
            diff = max(math.ceil(PLANT_FACTOR * finance * rng.uniform(1, 1.5) / cost),
                       math.ceil(PLANT_FACTOR * q_thr))
            return float(sign * diff), "count_variance_finance"
        small = int(HEALTHY_FACTOR * q_thr)
        diff = rng.randint(0, small) if small else 0
        while diff and diff * cost > HEALTHY_FACTOR * review:
            diff -= 1
        return float(sign * diff), None

    def _adjustments(self, site: Any) -> None:
        """Inventory adjustments; a few far outside the product's own recent history."""
        rng = self.rng
        score = float(_param(site, "anomaly_mad_score"))
        moves = self.db.tables["stock.move"]
        c = self.ctx
        candidates = []
        for (wh, product), ids in sorted(self.history.items()):
            if wh != c["wh"] or len(ids) < MIN_HISTORY:
                continue
            # Keep the history tight: clamp a regular move that strays from its median.
            qtys = [moves.rows[i]["product_uom_qty"] for i in ids]
            med, mad = _median_mad(qtys)
            for mid, q in zip(ids, qtys, strict=True):
                if MAD_K * abs(q - med) / mad > 1.5:
                    moves.update(mid, self.db.adapt("stock.move", {"product_uom_qty": med, "product_qty": med,
                                                                    "quantity": med}))
            candidates.append(product)
        planted_n = max(1, round(len(candidates) * 0.05)) if candidates else 0
        chosen = set(rng.sample(candidates, planted_n)) if candidates else set()
        for product in candidates:
            ids = self.history[(c["wh"], product)]
            med, mad = _median_mad([moves.rows[i]["product_uom_qty"] for i in ids])
            if product in chosen:
                qty = float(math.ceil(med + 4 * score * mad / MAD_K))
            elif rng.random() < 0.3:
                qty = float(max(1, round(med + rng.uniform(-0.3, 0.3) * mad)))
            else:
                continue
            when = self.ts(-timedelta(days=rng.uniform(0.5, 5)))
            into_stock = rng.random() < 0.5
            src, dst = (self.loc_inventory, c["stock"]) if into_stock else (c["stock"], self.loc_inventory)
            mid = self.ins("stock.move", name="Product Quantity Updated", reference="Product Quantity Updated",
                           state="done", product_id=product, product_uom_qty=qty, product_qty=qty, quantity=qty,
                           picked=True, product_uom=self.uom_unit, date=when, location_id=src,
                           location_dest_id=dst, company_id=1, warehouse_id=c["wh"], is_inventory=True,
                           create_date=when)
            if product in chosen:
                self.site_truth["stock_anomalies"]["abnormal_adjustment"].append(mid)
            ids.append(mid)

    def _orderpoints(self) -> None:
        rng = self.rng
        c = self.ctx
        for product in self.stocked:
            if rng.random() < 0.35:
                low = float(rng.randint(10, 50))
                self.ins("stock.warehouse.orderpoint", name=self.db.next_name("OP/"), warehouse_id=c["wh"],
                         location_id=c["stock"], product_id=product, company_id=1, product_min_qty=low,
                         product_max_qty=low * rng.randint(2, 5), qty_multiple=1.0, trigger="auto")

    def _activities(self) -> None:
        rng = self.rng
        orders = sorted(self.db.tables["purchase.order"].lookup("picking_type_id", self.ctx["types"]["incoming"]))
        model_id = next(iter(self.db.tables["ir.model"].lookup("model", "purchase.order")))
        todo = self.db.tables["ir.model.data"].rows[next(iter(
            self.db.tables["ir.model.data"].lookup("name", "mail_activity_data_todo")))]["res_id"]
        for po in orders[: max(1, len(orders) // 10)]:
            self.ins("mail.activity", res_model_id=model_id, res_model="purchase.order", res_id=po,
                     activity_type_id=todo, summary="Chase vendor confirmation", user_id=rng.choice(self.users),
                     date_deadline=self.ts(timedelta(days=rng.randint(-3, 7)))[:10])


    def _replenishment(self) -> None:
        """Approval equipment, planted after every site is built and with its own random
        stream, so the data set the other tests know is unchanged: approver users, the
        Purchase Manager group (admin), supplier info for every storable product, shortages
        at the branches (some the central warehouse covers, some it does not), and the
        purchase orders branch users drafted above the double validation amount."""
        rng = random.Random(self.seed * 7919 + 13)
        db = self.db
        users = db.tables["res.users"]
        group = self.ins("res.groups", name="Manager", full_name="Purchase / Manager")
        self.xmlid("purchase", "group_purchase_manager", "res.groups", group)
        users.update(next(iter(users.lookup("login", self.creds[0]))), {"groups_id": [group]})
        logins: list[str] = []
        for g in (getattr(self.approvals, "groups", None) or {}).values():
            logins += [m for m in g.members if ":" not in m] + [g.escalate_to]
        for login in dict.fromkeys(logins):
            if users.lookup("login", login):
                continue
            name = login.replace(".", " ").title()
            partner = self.ins("res.partner", name=name, complete_name=name, company_id=1,
                               email=f"{login}@siteops.example")
            uid = self.ins("res.users", name=name, login=login, partner_id=partner, company_id=1, company_ids=(1,),
                           tz="Europe/Brussels", email=f"{login}@siteops.example")
            db.passwords[uid] = login
        products = db.tables["product.product"].rows
        for i, vendor in enumerate(self.vendors):
            db.tables["res.partner"].update(vendor, {"x_vendor_class": "new" if i % 7 == 6 else "approved"})
        for i, pid in enumerate(self.storable):
            for seq, vendor in enumerate(rng.sample(self.vendors, min(2, len(self.vendors)))):
                cost = products[pid]["standard_price"]
                # Half on the template alone (product_id empty), as Odoo's product form makes
                # them; half on the variant: a reader must take both.
                self.ins("product.supplierinfo", partner_id=vendor, product_tmpl_id=self.templates[pid],
                         product_id=pid if i % 2 else False, sequence=seq + 1, min_qty=0.0,
                         price=round(cost * (1 + 0.05 * seq), 2), delay=rng.randint(3, 10), company_id=1)
        # The buyer drafted the order: Odoo's create_uid is theirs (segregation of duties reads it).
        orders = db.tables["purchase.order"]
        for oid, row in orders.rows.items():
            if row.get("state") == "to approve" and row.get("user_id"):
                orders.update(oid, {"create_uid": row["user_id"]})
        truth: dict[str, dict[str, list[int]]] = {}
        central = next((s for s in self.sites if s.code == self.central), None)
        wh_rows = db.tables["stock.warehouse"]
        wh_of = {wh_rows.rows[w]["code"]: wh_rows.rows[w] for w in wh_rows.rows}
        central_stocked = set(self.site_stocked.get(self.central, ()))
        taken: set[int] = set()
        for site in self.sites:
            if central is None or site.code == self.central:
                continue
            wh = wh_of[site.odoo_warehouse]
            free = [p for p in self.storable if p not in self.site_stocked[site.code] and p not in central_stocked
                    and p not in taken]
            rng.shuffle(free)
            covered, uncovered = free[:2], free[2:3]
            taken.update(covered + uncovered)
            for pid in covered + uncovered:
                low = float(rng.randint(10, 30))
                self.ins("stock.warehouse.orderpoint", name=db.next_name("OP/"), warehouse_id=wh["id"],
                         location_id=wh["lot_stock_id"], product_id=pid, company_id=1, product_min_qty=low,
                         product_max_qty=low * 4, qty_multiple=5.0, trigger="manual")
                self.ins("stock.quant", product_id=pid, location_id=wh["lot_stock_id"], company_id=1,
                         quantity=float(rng.randint(0, int(low) - 1)), reserved_quantity=0.0, in_date=self._done_date())
            cw = wh_of[central.odoo_warehouse]
            for pid in covered:  # plenty at the central warehouse, above its own minimum
                self.ins("stock.quant", product_id=pid, location_id=cw["lot_stock_id"], company_id=1,
                         quantity=float(rng.randint(400, 600)), reserved_quantity=0.0, in_date=self._done_date())
            truth[site.code] = {"covered": covered, "uncovered": uncovered}
        self._edi_suppliers([p for t in truth.values() for p in t["uncovered"]])
        self.replenishment_truth = truth

    def _foreign_currency(self) -> None:
        """EUR, with dated rates, and a European vendor's two orders at the central site
        whose double validation the conversion decides (no random draws: the rest of the
        data set is unchanged). Both total 9,200 EUR, numerically below the company's
        10,000 USD; converted at their own date:

        * drafted 6 days ago (rate 0.86): the limit is 8,600 EUR, so the order waits in
          `to approve` (it is 10,697.67 USD: siteops routes it above the approval limit);
        * drafted 45 days ago (rate 0.95): the limit is 9,500 EUR, so a branch user's
          button_confirm approves it at once (it is 9,684.21 USD).
        """
        from siteops.sim.odoo import currency

        db = self.db
        self.xmlid("base", "USD", "res.currency", self.usd)
        self.xmlid("base", "EUR", "res.currency", self.eur)
        rates = {self.ts(-timedelta(days=days))[:10]: rate for days, rate in EUR_RATES}
        for day, rate in rates.items():
            self.ins("res.currency.rate", name=day, rate=rate, currency_id=self.eur, company_id=1)
        vendor = self.ins("res.partner", name="Rhein Armaturen GmbH", complete_name="Rhein Armaturen GmbH",
                          is_company=True, company_type="company", supplier_rank=1, ref="V9001",
                          email="orders@rhein-armaturen.example", city="K\u00f6ln", country_code="DE",
                          x_vendor_class="approved", property_purchase_currency_id=self.eur)
        site = next((s for s in self.sites if s.code == self.central), self.sites[0])
        wh_rows = db.tables["stock.warehouse"]
        wh = wh_rows.rows[next(iter(wh_rows.lookup("code", site.odoo_warehouse)))]
        buyer = next(iter(self.site_users.get(site.code) or [2]))
        product = (self.site_stocked.get(site.code) or self.storable)[0]
        name = db.tables["product.product"].rows[product]["name"]
        orders: dict[str, int] = {}
        for key, days, state in (("to_approve", 6, "to approve"), ("draft", 45, "draft")):
            ordered = self.ts(-timedelta(days=days))
            planned = self.ts(timedelta(days=10))
            po = self.ins("purchase.order", name=db.next_name("P"), partner_id=vendor, state=state,
                          date_order=ordered, date_planned=planned, company_id=1, user_id=buyer,
                          picking_type_id=wh["in_type_id"], create_date=ordered, create_uid=buyer,
                          currency_id=self.eur, amount_untaxed=8000.0, amount_tax=1200.0, amount_total=9200.0,
                          currency_rate=currency.conversion_rate(db, self.usd, self.eur, 1, ordered))
            uom = "product_uom_id" if self.version >= 19 else "product_uom"
            self.ins("purchase.order.line", order_id=po, product_id=product, name=name, product_qty=40.0,
                     product_uom_qty=40.0, price_unit=200.0, price_subtotal=8000.0, price_total=9200.0,
                     date_planned=planned, company_id=1, **{uom: self.uom_unit})
            orders[key] = po
        self.currency_truth = {"company": "USD", "EUR": {
            "id": self.eur, "rates": rates, "vendor": vendor, "site": site.code, "orders": orders,
            "amount_total": 9200.0, "double_validation_amount_usd": 10000.0}}

    def _edi_suppliers(self, products: list[int]) -> None:
        """The shortages the central warehouse cannot cover are bought from the EDI partners'
        vendors (their first supplier, in turn), so that approving one sends the order by EDI
        as the demo promises. No random draws: the rest of the data set is unchanged."""
        vendors = self.db.tables["res.partner"]
        edi = [v for ref in self.edi_refs for v in self.vendors if vendors.rows[v].get("ref") == ref]
        if not edi:
            return
        infos = self.db.tables["product.supplierinfo"]
        for i, pid in enumerate(products):
            rows = sorted(infos.lookup("product_tmpl_id", self.templates[pid]), key=lambda r: infos.rows[r]["sequence"])
            vendor = edi[i % len(edi)]
            for other in rows[1:]:  # the second supplier keeps a vendor of its own
                if infos.rows[other]["partner_id"] == vendor:
                    infos.update(other, {"partner_id": infos.rows[rows[0]]["partner_id"]})
            if rows:
                infos.update(rows[0], {"partner_id": vendor})

def _edi_vendor_refs(sites: Any) -> list[str]:
    """The Odoo vendor refs of the EDI partners in sites.toml (`sites`'s file when it is a
    registry), if it loads: the simulator runs without one."""
    try:
        from siteops.config.edi import load_edi

        registry = sites if hasattr(sites, "path") and hasattr(sites, "approvals") else None
        return [p.odoo_vendor_ref for p in load_edi(registry=registry)]
    except Exception:
        return []


EUR_RATES = ((365, 0.93), (120, 0.95), (30, 0.86))  # (days before now, EUR per USD)


def _median_mad(values: list[float]) -> tuple[float, float]:
    med = statistics.median(values)
    mad = statistics.median(abs(v - med) for v in values) or 1.0
    return med, mad


def _as_truth(t: dict[str, Any]) -> dict[str, Any]:
    anomalies = t["stock_anomalies"]
    return {
        "warehouse": t["warehouse"],
        "aging_transfers": {"model": "stock.picking", "ids": sorted(t["aging_transfers"])},
        "overdue_receipts": {"model": "stock.picking", "ids": sorted(t["overdue_receipts"])},
        "aging_backorders": {"model": "stock.picking", "ids": sorted(t["aging_backorders"])},
        "ready_to_ship": {"model": "stock.picking", "ids": sorted(t["ready_to_ship"])},
        "stock_anomalies": {
            kind: {"model": "stock.move" if kind == "abnormal_adjustment" else "stock.quant", "ids": sorted(ids)}
            for kind, ids in anomalies.items()},
    }


def generate(sites: Any, *, seed: int = 7, scale: float = 1.0, version: int = 17, now: datetime | None = None,
             db_name: str = "demo", login: str = "admin", password: str = "admin",
             api_key: str = "admin") -> tuple[Database, dict[str, Any]]:
    """Build the database and its ground truth for `sites` (a Registry, a dict or a list of sites)."""
    gen = Generator(sites, seed=seed, scale=scale, version=version, now=now, db_name=db_name, login=login,
                    password=password, api_key=api_key)
    # Millions of small dicts make the cyclic GC pause for seconds; none of them form
    # cycles, so collect nothing while building and freeze the result out of later scans.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        result = gen.build()
    finally:
        if was_enabled:
            gc.enable()
    gc.freeze()
    return result


def write_truth(truth: Mapping[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(truth, indent=2, sort_keys=True))
    return path


def demo_sites() -> list[Any]:
    """The network of sites.toml, for when no registry is at hand."""
    try:
        from siteops.config.sites import load_registry

        return list(load_registry().sites.values())
    except Exception:  # the registry is optional for the simulator
        return [SiteSpec("CW", "Central Warehouse", "CW", ("cw.manager",)),
                SiteSpec("NORTH", "North Branch", "NORTH", ("north.manager",))]


def site_ids(truth: Mapping[str, Any], site: str) -> Iterable[int]:
    """Every id listed for one site (handy in tests)."""
    s = truth["sites"][site]
    for key in ("aging_transfers", "overdue_receipts", "aging_backorders", "ready_to_ship"):
        yield from s[key]["ids"]
    for sub in s["stock_anomalies"].values():
        yield from sub["ids"]
