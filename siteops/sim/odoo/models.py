"""Model and field definitions of the simulated Odoo, per major version (16, 17, 18, 19).

Only what a distribution job platform touches is modelled (odoo.md §3), with the field
names, types, selections and default `_order` of the real models. Version differences
(odoo.md §3, §5 item 8 and §9) are switched by the `version` argument of `build_models`:

* 16: `stock.move.quantity_done` (17 renamed it `quantity` and added `picked`);
  `sale.order` has a `done` ("Locked") state instead of the `locked` flag.
* 18: `is_storable` replaces `detailed_type`; `location_final_id`, `is_favorite`.
* 19: `stock.picking.date`, `.group_id`, `.move_ids_without_package` and
  `stock.move.scrapped`, `.group_id` are gone (OpenUpgrade 19.0 analyses), so asking for
  them is an "Invalid field" error; `procurement.group` became `stock.reference`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# The types odoorpc knows; anything else (monetary, many2one_reference) is read as Unknown.
RELATIONAL = frozenset({"many2one", "one2many", "many2many"})
X2MANY = frozenset({"one2many", "many2many"})


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    string: str = ""
    relation: str | None = None
    inverse: str | None = None  # one2many: the comodel's many2one pointing back
    selection: tuple[tuple[str, str], ...] | None = None
    required: bool = False
    readonly: bool = False
    store: bool = True
    related: str | None = None  # dotted path, e.g. "picking_type_id.code"
    compute: Callable[..., Any] | None = None  # non-stored compute(sim, table, row) -> raw value
    default: Any = None
    index: bool = False
    model_field: str | None = None  # many2one_reference: the char field holding the model

    @property
    def empty(self) -> Any:
        """The raw value of an unset field (what a sparse row means when the key is absent)."""
        if self.type == "boolean":
            return False
        if self.type == "integer":
            return 0
        if self.type in ("float", "monetary"):
            return 0.0
        if self.type == "many2many":
            return ()
        return None

    def describe(self) -> dict[str, Any]:
        """The `fields_get` entry; `context` is a dict because odoorpc sends it back verbatim."""
        desc: dict[str, Any] = {
            "type": self.type,
            "string": self.string or self.name.replace("_", " ").title(),
            "required": self.required,
            "readonly": self.readonly or bool(self.compute) or bool(self.related),
            "store": self.store and not self.compute and not self.related,
            "searchable": not self.compute or self.name in ("display_name", "id"),
            "sortable": self.store and not self.compute and not self.related,
            "help": "",
        }
        if self.relation:
            desc.update(relation=self.relation, context={}, domain=[])
        if self.type == "one2many" and self.inverse:
            desc["relation_field"] = self.inverse
        if self.selection is not None:
            desc["selection"] = [list(s) for s in self.selection]
        if self.related:
            desc["related"] = self.related
        return desc


@dataclass
class ModelDef:
    name: str
    description: str
    fields: dict[str, Field] = field(default_factory=dict)
    order: str = "id"
    rec_name: str = "name"
    rec_names_search: tuple[str, ...] = ()
    parent_name: str | None = None
    mail_thread: bool = False

    @property
    def has_active(self) -> bool:
        return "active" in self.fields

    def search_names(self) -> tuple[str, ...]:
        return self.rec_names_search or (self.rec_name,)


# -- field shorthands ------------------------------------------------------------------------


def char(name: str, string: str = "", **kw: Any) -> Field:
    return Field(name, "char", string, **kw)


def text(name: str, string: str = "", **kw: Any) -> Field:
    return Field(name, "text", string, **kw)


def html(name: str, string: str = "", **kw: Any) -> Field:
    return Field(name, "html", string, **kw)


def integer(name: str, string: str = "", **kw: Any) -> Field:
    return Field(name, "integer", string, **kw)


def flt(name: str, string: str = "", **kw: Any) -> Field:
    return Field(name, "float", string, **kw)


def money(name: str, string: str = "", **kw: Any) -> Field:
    return Field(name, "monetary", string, **kw)


def boolean(name: str, string: str = "", **kw: Any) -> Field:
    return Field(name, "boolean", string, **kw)


def date(name: str, string: str = "", **kw: Any) -> Field:
    return Field(name, "date", string, **kw)


def dt(name: str, string: str = "", **kw: Any) -> Field:
    return Field(name, "datetime", string, **kw)


def sel(name: str, options: list[tuple[str, str]], string: str = "", **kw: Any) -> Field:
    return Field(name, "selection", string, selection=tuple(options), index=True, **kw)


def m2o(name: str, relation: str, string: str = "", **kw: Any) -> Field:
    return Field(name, "many2one", string, relation=relation, **kw)


def o2m(name: str, relation: str, inverse: str, string: str = "", **kw: Any) -> Field:
    return Field(name, "one2many", string, relation=relation, inverse=inverse, store=False, **kw)


def m2m(name: str, relation: str, string: str = "", **kw: Any) -> Field:
    return Field(name, "many2many", string, relation=relation, **kw)


def ref(name: str, model_field: str, string: str = "", **kw: Any) -> Field:
    return Field(name, "many2one_reference", string, model_field=model_field, index=True, **kw)


def related(name: str, path: str, ftype: str, string: str = "", **kw: Any) -> Field:
    return Field(name, ftype, string, related=path, store=False, **kw)


def computed(name: str, ftype: str, fn: Callable[..., Any], string: str = "", **kw: Any) -> Field:
    return Field(name, ftype, string, compute=fn, store=False, **kw)


# -- computes that need the store (resolved lazily by name to avoid an import cycle) --------


def _available_quantity(sim: Any, table: Any, row: dict[str, Any]) -> float:
    return float(row.get("quantity", 0.0)) - float(row.get("reserved_quantity", 0.0))


def _qty_available(sim: Any, table: Any, row: dict[str, Any]) -> float:
    return float(sim.qty_available(row["id"]))


def _activity_state(sim: Any, table: Any, row: dict[str, Any]) -> str:
    today = sim.today()
    deadline = row.get("date_deadline") or today
    return "overdue" if deadline < today else ("today" if deadline == today else "planned")


def _mail_activity_res_name(sim: Any, table: Any, row: dict[str, Any]) -> Any:
    return sim.display_name_of(row.get("res_model"), row.get("res_id"))


def _imd_complete_name(sim: Any, table: Any, row: dict[str, Any]) -> str:
    return f"{row.get('module')}.{row.get('name')}"


def _currency(name: str) -> Callable[..., Any]:
    """A compute of siteops.sim.odoo.currency, imported when first called (no cycle)."""

    def compute(sim: Any, table: Any, row: dict[str, Any]) -> Any:
        from siteops.sim.odoo import currency

        return getattr(currency, name)(sim, table, row)

    return compute


PRIORITY = [("0", "Normal"), ("1", "Urgent")]


def _magic(fields: list[Field]) -> dict[str, Field]:
    """Add the automatic fields every model with `_log_access` has."""
    base = [
        Field("id", "integer", "ID", readonly=True),
        Field("display_name", "char", "Display Name", store=False, readonly=True,
              compute=lambda sim, table, row: sim.display_name(table, row)),
        dt("create_date", "Created on", readonly=True),
        m2o("create_uid", "res.users", "Created by", readonly=True),
        dt("write_date", "Last Updated on", readonly=True),
        m2o("write_uid", "res.users", "Last Updated by", readonly=True),
    ]
    return {f.name: f for f in [*base, *fields]}


# What a row written with the current (17+) names becomes in an older or newer version, for
# the generator and the business actions, which are written once: (version test, model)
# -> {current name: that version's name, or None when the field does not exist there}.
_VERSION_NAMES: list[tuple[Callable[[int], bool], str, dict[str, str | None]]] = [
    (lambda v: v <= 16, "stock.move", {"quantity": "quantity_done", "picked": None}),
    (lambda v: v <= 16, "sale.order", {"locked": None}),
    (lambda v: v >= 19, "stock.picking", {"date": None, "group_id": None}),
    (lambda v: v >= 19, "stock.move", {"scrapped": None, "group_id": None}),
]


def version_name(version: int, model: str, name: str) -> str | None:
    """The name field `name` (as 17 calls it) has in `version`; None if it does not exist there."""
    for applies, m, names in _VERSION_NAMES:
        if m == model and name in names and applies(version):
            return names[name]
    return name


def adapt_values(version: int, model: str, values: dict[str, Any]) -> dict[str, Any]:
    """`values` written with 17's names, renamed (or dropped) for `version`."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        real = version_name(version, model, name)
        if real is not None:
            out[real] = value
    return out


def _add(models: dict[str, ModelDef], mdef: ModelDef, fields: list[Field]) -> None:
    mdef.fields = _magic(fields)
    models[mdef.name] = mdef


def build_models(version: int = 17) -> dict[str, ModelDef]:
    """All modelled models for Odoo `version` (16, 17, 18 or 19)."""
    v = version
    M: dict[str, ModelDef] = {}
    _add(M, ModelDef("res.company", "Companies", order="sequence, name", parent_name="parent_id"), [
        char("name", "Company Name", required=True), m2o("partner_id", "res.partner", "Partner"),
        m2o("parent_id", "res.company", "Parent Company"),
        o2m("child_ids", "res.company", "parent_id", "Branches"), char("parent_path"),
        integer("sequence", default=10), boolean("active", default=True), char("email"), char("phone"),
        sel("po_double_validation", [("one_step", "Confirm purchase orders in one step"),
                                     ("two_step", "Get 2 levels of approvals to confirm a purchase order")],
            default="one_step"),
        money("po_double_validation_amount", "Double validation amount", default=5000.0),
        m2o("currency_id", "res.currency", "Currency", required=True),
    ])
    _add(M, ModelDef("res.users", "User", order="name, login", rec_names_search=("name", "login")), [
        char("name", "Name", required=True), char("login", "Login", required=True, index=True),
        m2o("partner_id", "res.partner", "Related Partner", required=True),
        m2o("company_id", "res.company", "Company", required=True),
        m2m("company_ids", "res.company", "Companies"), boolean("active", default=True),
        char("email"), sel("tz", [("UTC", "UTC"), ("Europe/Brussels", "Europe/Brussels"),
                                 ("America/New_York", "America/New_York")], "Timezone"),
        char("lang", default="en_US"), boolean("share", "Share User"),
        m2m("groups_id", "res.groups", "Groups"),
    ])
    # Access groups, for the one check the simulator makes: purchase double validation
    # (`purchase.group_purchase_manager` bypasses it, as in Odoo 17's _approval_allowed).
    _add(M, ModelDef("res.groups", "Access Groups", order="name"), [
        char("name", "Name", required=True), char("full_name", "Group Name"),
    ])
    _add(M, ModelDef("res.partner", "Contact", order="complete_name ASC, id DESC", rec_name="complete_name",
                     rec_names_search=("complete_name", "email", "ref"), parent_name="parent_id",
                     mail_thread=True), [
        char("name", "Name", index=True), char("complete_name", "Complete Name", index=True), char("ref", "Reference"),
        char("email"), char("phone"), char("mobile"), char("street"), char("street2"), char("city"),
        char("zip"), char("country_code", "Country Code"), char("vat", "Tax ID"),
        boolean("is_company", "Is a Company"),
        sel("company_type", [("person", "Individual"), ("company", "Company")], "Company Type"),
        m2o("parent_id", "res.partner", "Related Company"), o2m("child_ids", "res.partner", "parent_id", "Contact"),
        m2o("commercial_partner_id", "res.partner", "Commercial Entity"),
        sel("type", [("contact", "Contact"), ("invoice", "Invoice Address"), ("delivery", "Delivery Address"),
                     ("other", "Other Address")], "Address Type", default="contact"),
        m2o("company_id", "res.company", "Company"), m2o("user_id", "res.users", "Salesperson"),
        boolean("active", default=True), char("lang", default="en_US"), char("tz"), char("barcode"),
        integer("supplier_rank"), integer("customer_rank"),
        # A custom field (Odoo's x_ prefix) the demo uses for the customer's service tier.
        sel("x_tier", [("gold", "Gold"), ("silver", "Silver"), ("standard", "Standard")], "Customer Tier"),
        # A custom (Studio-style) field: the vendor class the approval matrix routes by.
        char("x_vendor_class", "Vendor Class"),
        # purchase's company-dependent "Supplier Currency": the UI's onchange puts it on a new
        # order; an order created over RPC without currency_id gets the company's.
        m2o("property_purchase_currency_id", "res.currency", "Supplier Currency"),
    ])
    _add(M, ModelDef("product.category", "Product Category", order="complete_name", rec_name="complete_name",
                     parent_name="parent_id"), [
        char("name", required=True), char("complete_name", "Complete Name"),
        m2o("parent_id", "product.category", "Parent Category"),
        o2m("child_id", "product.category", "parent_id", "Child Categories"), char("parent_path"),
    ])
    _add(M, ModelDef("uom.uom", "Product Unit of Measure", order="factor DESC, id"), [
        char("name", "Unit of Measure", required=True), flt("factor", default=1.0), flt("rounding", default=0.01),
        sel("uom_type", [("bigger", "Bigger"), ("reference", "Reference"), ("smaller", "Smaller")],
            default="reference"), boolean("active", default=True),
    ])
    product_types = ([("consu", "Consumable"), ("service", "Service"), ("product", "Storable Product")]
                     if v <= 17 else [("consu", "Goods"), ("service", "Service"), ("combo", "Combo")])
    product_fields = [
        char("name", "Name", required=True, index=True), char("default_code", "Internal Reference", index=True),
        char("barcode"), m2o("categ_id", "product.category", "Product Category", required=True),
        m2o("uom_id", "uom.uom", "Unit of Measure"), m2o("uom_po_id", "uom.uom", "Purchase Unit"),
        flt("list_price", "Sales Price"), flt("standard_price", "Cost"), boolean("active", default=True),
        boolean("sale_ok", default=True), boolean("purchase_ok", default=True),
        m2o("company_id", "res.company", "Company"), sel("type", product_types, "Product Type", default="consu"),
        sel("priority", [("0", "Normal"), ("1", "Favorite")], "Favorite", default="0"),
        flt("weight"), flt("volume"),
        computed("qty_available", "float", _qty_available, "Quantity On Hand"),
    ]
    if v <= 17:
        product_fields.append(sel("detailed_type", product_types, "Product Type", default="consu"))
    else:
        product_fields.append(boolean("is_storable", "Track Inventory"))
    # One template per product, as Odoo has for a product without variants: the template
    # carries what its variants share (here, what siteops reads), the variant the rest.
    _add(M, ModelDef("product.template", "Product", order="priority desc, name, id",
                     rec_names_search=("default_code", "name"), mail_thread=True), [
        char("name", "Name", required=True, index=True), char("default_code", "Internal Reference"),
        m2o("categ_id", "product.category", "Product Category", required=True),
        m2o("uom_id", "uom.uom", "Unit of Measure"), flt("list_price", "Sales Price"),
        flt("standard_price", "Cost"), boolean("active", default=True),
        sel("priority", [("0", "Normal"), ("1", "Favorite")], "Favorite", default="0"),
        m2o("company_id", "res.company", "Company"), sel("type", product_types, "Product Type", default="consu"),
    ])
    product_fields.append(m2o("product_tmpl_id", "product.template", "Product Template", required=True))
    _add(M, ModelDef("product.product", "Product", order="priority desc, default_code, name, id",
                     rec_names_search=("default_code", "name", "barcode"), mail_thread=True), product_fields)
    # Vendor pricelists (purchase's supplier info), keyed on the template as in Odoo; a row
    # with a product_id holds for that variant only, one without for every variant.
    _add(M, ModelDef("product.supplierinfo", "Supplier Pricelist", order="sequence, min_qty DESC, price, id"), [
        m2o("partner_id", "res.partner", "Vendor", required=True), char("product_name", "Vendor Product Name"),
        char("product_code", "Vendor Product Code"), integer("sequence", default=1),
        flt("min_qty", "Quantity"), money("price", "Price"), integer("delay", "Delivery Lead Time", default=1),
        m2o("product_tmpl_id", "product.template", "Product Template", required=True),
        m2o("product_id", "product.product", "Product Variant"), m2o("company_id", "res.company", "Company"),
        date("date_start", "Start Date"), date("date_end", "End Date"),
    ])
    _add(M, ModelDef("stock.warehouse", "Warehouse", order="sequence,id"), [
        char("name", "Warehouse", required=True), char("code", "Short Name", required=True, index=True),
        m2o("company_id", "res.company", "Company", required=True), m2o("partner_id", "res.partner", "Address"),
        boolean("active", default=True), integer("sequence", default=10),
        m2o("view_location_id", "stock.location", "View Location", required=True),
        m2o("lot_stock_id", "stock.location", "Location Stock", required=True),
        m2o("in_type_id", "stock.picking.type", "In Type"), m2o("out_type_id", "stock.picking.type", "Out Type"),
        m2o("pick_type_id", "stock.picking.type", "Pick Type"),
        m2o("pack_type_id", "stock.picking.type", "Pack Type"),
        m2o("int_type_id", "stock.picking.type", "Internal Type"),
        sel("reception_steps", [("one_step", "Receive and Store (1 step)"),
                                ("two_steps", "Receive then store (2 steps)"),
                                ("three_steps", "Receive, quality control, then store (3 steps)")],
            default="one_step"),
        sel("delivery_steps", [("ship_only", "Deliver (1 step)"), ("pick_ship", "Pick then Deliver (2 steps)"),
                               ("pick_pack_ship", "Pick, Pack, then Deliver (3 steps)")], default="ship_only"),
    ])
    location_fields = [
        char("name", "Location Name", required=True), char("complete_name", "Full Location Name", index=True),
        sel("usage", [("supplier", "Vendor Location"), ("view", "View"), ("internal", "Internal Location"),
                      ("customer", "Customer Location"), ("inventory", "Inventory Loss"),
                      ("production", "Production"), ("transit", "Transit Location")],
            "Location Type", required=True, default="internal"),
        m2o("location_id", "stock.location", "Parent Location"),
        o2m("child_ids", "stock.location", "location_id", "Contains"), char("parent_path"),
        m2o("company_id", "res.company", "Company"), boolean("active", default=True),
        boolean("scrap_location", "Is a Scrap Location?"), boolean("replenish_location", "Replenish Location"),
        char("barcode"), m2o("warehouse_id", "stock.warehouse", "Warehouse"),
        o2m("quant_ids", "stock.quant", "location_id"), date("last_inventory_date", "Last Effective Inventory"),
        date("next_inventory_date", "Next Expected Inventory"), integer("cyclic_inventory_frequency"),
    ]
    if v <= 17:
        location_fields.append(boolean("return_location", "Is a Return Location?"))
    _add(M, ModelDef("stock.location", "Inventory Locations", order="complete_name, id", rec_name="complete_name",
                     rec_names_search=("complete_name", "barcode"), parent_name="location_id"), location_fields)
    ptype_fields = [
        char("name", "Operation Type", required=True),
        sel("code", [("incoming", "Receipt"), ("outgoing", "Delivery"), ("internal", "Internal Transfer")],
            "Type of Operation", required=True, default="incoming"),
        char("sequence_code", "Sequence Prefix", required=True), integer("sequence", default=1),
        m2o("warehouse_id", "stock.warehouse", "Warehouse"), m2o("company_id", "res.company", required=True),
        boolean("active", default=True),
        m2o("default_location_src_id", "stock.location", "Default Source Location", required=v >= 18),
        m2o("default_location_dest_id", "stock.location", "Default Destination Location", required=v >= 18),
        m2o("return_picking_type_id", "stock.picking.type", "Operation Type for Returns"),
        sel("reservation_method", [("at_confirm", "At Confirmation"), ("manual", "Manually"),
                                   ("by_date", "Before scheduled date")], default="at_confirm"),
        sel("create_backorder", [("ask", "Ask"), ("always", "Always"), ("never", "Never")], default="ask"),
        char("barcode"),
    ]
    if v <= 17:
        ptype_fields.append(boolean("show_reserved", default=True))
    else:
        ptype_fields += [boolean("is_favorite", "Show Operation in Overview"),
                         sel("move_type", [("direct", "As soon as possible"), ("one", "When all products are ready")],
                             default="direct")]
    _add(M, ModelDef("stock.picking.type", "Picking Type",
                     order="sequence, id" if v <= 17 else "is_favorite desc, sequence, id"), ptype_fields)
    picking_fields = [
        char("name", "Reference", default="/", index=True), char("origin", "Source Document", index=True),
        sel("state", [("draft", "Draft"), ("waiting", "Waiting Another Operation"), ("confirmed", "Waiting"),
                      ("assigned", "Ready"), ("done", "Done"), ("cancel", "Cancelled")],
            "Status", readonly=True, default="draft"),
        sel("priority", PRIORITY, "Priority", default="0"),
        dt("scheduled_date", "Scheduled Date", required=True), dt("date_deadline", "Deadline"),
        boolean("has_deadline_issue", "Is late"),
        dt("date_done", "Date of Transfer", readonly=True),
        m2o("picking_type_id", "stock.picking.type", "Operation Type", required=True),
        related("picking_type_code", "picking_type_id.code", "selection", "Type of Operation",
                selection=M["stock.picking.type"].fields["code"].selection),
        m2o("location_id", "stock.location", "Source Location", required=True),
        m2o("location_dest_id", "stock.location", "Destination Location", required=True),
        m2o("partner_id", "res.partner", "Contact"), m2o("company_id", "res.company", "Company"),
        m2o("user_id", "res.users", "Responsible"), m2o("backorder_id", "stock.picking", "Back Order of"),
        o2m("backorder_ids", "stock.picking", "backorder_id", "Back Orders"),
        o2m("move_ids", "stock.move", "picking_id", "Stock Moves"),
        sel("move_type", [("direct", "As soon as possible"), ("one", "When all products are ready")],
            "Shipping Policy", default="direct"),
        html("note", "Notes"), boolean("is_locked", default=True), boolean("printed"),
        m2o("owner_id", "res.partner", "Assign Owner"),
        m2o("carrier_id", "delivery.carrier", "Carrier"), char("carrier_tracking_ref", "Tracking Reference"),
        flt("weight"), flt("shipping_weight", "Weight for Shipping"),
        m2o("sale_id", "sale.order", "Sales Order"), m2o("purchase_id", "purchase.order", "Purchase Orders"),
    ]
    if v <= 18:  # removed in 19 (OpenUpgrade stock 19.0.1.1)
        picking_fields += [dt("date", "Creation Date"),
                           o2m("move_ids_without_package", "stock.move", "picking_id", "Stock moves not in package"),
                           m2o("group_id", "procurement.group", "Procurement Group")]
    if v >= 18:
        picking_fields.append(computed("search_date_category", "selection", lambda s, t, r: False,
                                       selection=(("before", "Before"), ("yesterday", "Yesterday"),
                                                  ("today", "Today"), ("day_1", "Tomorrow"),
                                                  ("day_2", "The day after tomorrow"), ("after", "After"))))
    _add(M, ModelDef("stock.picking", "Transfer", order="priority desc, scheduled_date asc, id desc",
                     mail_thread=True), picking_fields)
    move_fields = [
        char("name", "Description"), char("reference", "Reference"), char("origin", "Source Document"),
        sel("state", [("draft", "New"), ("waiting", "Waiting Another Move"), ("confirmed", "Waiting Availability"),
                      ("partially_available", "Partially Available"), ("assigned", "Available"),
                      ("done", "Done"), ("cancel", "Cancelled")], "Status", readonly=True, default="draft"),
        sel("priority", PRIORITY, default="0"), m2o("product_id", "product.product", "Product", required=True),
        flt("product_uom_qty", "Demand", required=True), flt("product_qty", "Real Quantity"),
        *([flt("quantity_done", "Quantity Done")] if v <= 16 else [flt("quantity", "Quantity"), boolean("picked")]),
        m2o("product_uom", "uom.uom", "UoM"),
        dt("date", "Date Scheduled", required=True), dt("date_deadline", "Deadline"),
        m2o("picking_id", "stock.picking", "Transfer"), m2o("picking_type_id", "stock.picking.type", "Operation Type"),
        m2o("location_id", "stock.location", "Source Location", required=True),
        m2o("location_dest_id", "stock.location", "Destination Location", required=True),
        m2o("partner_id", "res.partner", "Destination Address"), m2o("company_id", "res.company", "Company"),
        m2o("warehouse_id", "stock.warehouse", "Warehouse"),
        sel("procure_method", [("make_to_stock", "Default: Take From Stock"),
                               ("make_to_order", "Advanced: Apply Procurement Rules")], default="make_to_stock"),
        m2o("purchase_line_id", "purchase.order.line", "Purchase Order Line"),
        boolean("is_inventory", "Inventory"), integer("sequence", default=10),
    ]
    if v <= 18:
        move_fields += [boolean("scrapped"), m2o("group_id", "procurement.group", "Procurement Group")]
    if v >= 18:
        move_fields.append(m2o("location_final_id", "stock.location", "Final Location"))
    _add(M, ModelDef("stock.move", "Stock Move", order="sequence, id"), move_fields)
    _add(M, ModelDef("stock.quant", "Quants", rec_name="product_id"), [
        m2o("product_id", "product.product", "Product", required=True),
        m2o("location_id", "stock.location", "Location", required=True),
        m2o("owner_id", "res.partner", "Owner"), m2o("company_id", "res.company", "Company"),
        related("warehouse_id", "location_id.warehouse_id", "many2one", "Warehouse", relation="stock.warehouse"),
        related("product_categ_id", "product_id.categ_id", "many2one", "Product Category",
                relation="product.category"),
        related("product_uom_id", "product_id.uom_id", "many2one", "Unit", relation="uom.uom"),
        flt("quantity", "Quantity", readonly=True), flt("reserved_quantity", "Reserved Quantity", readonly=True),
        computed("available_quantity", "float", _available_quantity, "Available Quantity"),
        flt("inventory_quantity", "Counted Quantity"), flt("inventory_diff_quantity", "Difference"),
        date("inventory_date", "Scheduled Date"), boolean("inventory_quantity_set", "Inventory Quantity Set"),
        m2o("user_id", "res.users", "Assigned To"), date("last_count_date", "Last Count Date"),
        dt("in_date", "Incoming Date"),
    ])
    op_fields = [
        char("name", required=True), boolean("active", default=True),
        sel("trigger", [("auto", "Auto"), ("manual", "Manual")], default="auto"),
        m2o("warehouse_id", "stock.warehouse", "Warehouse", required=True),
        m2o("location_id", "stock.location", "Location", required=True),
        m2o("product_id", "product.product", "Product", required=True),
        related("product_category_id", "product_id.categ_id", "many2one", "Product Category",
                relation="product.category"),
        m2o("company_id", "res.company", "Company", required=True),
        flt("product_min_qty", "Min Quantity", required=True), flt("product_max_qty", "Max Quantity", required=True),
        flt("qty_multiple", "Multiple Quantity", default=1.0), flt("qty_forecast", "Forecast"),
        flt("qty_to_order", "To Order"), date("snoozed_until", "Snoozed"),
    ]
    if v >= 18:
        op_fields.append(flt("qty_to_order_manual", "To Order Manual"))
    _add(M, ModelDef("stock.warehouse.orderpoint", "Minimum Inventory Rule", order="location_id,company_id,id"),
         op_fields)
    po_states = [("draft", "RFQ"), ("sent", "RFQ Sent"), ("to approve", "To Approve"),
                 ("purchase", "Purchase Order"), ("done", "Locked"), ("cancel", "Cancelled")]
    if v >= 19:
        po_states = [s for s in po_states if s[0] != "done"]
    po_fields = [
        char("name", "Order Reference", required=True, default="New", index=True),
        m2o("partner_id", "res.partner", "Vendor", required=True), char("partner_ref", "Vendor Reference"),
        char("origin", "Source Document"), sel("priority", PRIORITY, default="0"),
        sel("state", po_states, "Status", readonly=True, default="draft"),
        dt("date_order", "Order Deadline", required=True), dt("date_approve", "Confirmation Date", readonly=True),
        dt("date_planned", "Expected Arrival"), money("amount_untaxed", "Untaxed Amount"),
        money("amount_tax", "Taxes"), money("amount_total", "Total"), m2o("user_id", "res.users", "Buyer"),
        m2o("company_id", "res.company", "Company", required=True),
        sel("invoice_status", [("no", "Nothing to Bill"), ("to invoice", "Waiting Bills"),
                               ("invoiced", "Fully Billed")], "Billing Status", default="no"),
        o2m("order_line", "purchase.order.line", "order_id", "Order Lines"),
        html("note" if v >= 19 else "notes", "Terms and Conditions"),
        m2o("picking_type_id", "stock.picking.type", "Deliver To", required=True),
        o2m("picking_ids", "stock.picking", "purchase_id", "Receptions"),
        sel("receipt_status", [("pending", "Not Received"), ("partial", "Partially Received"),
                               ("full", "Fully Received")], "Receipt Status"),
        # Amounts are in the order's currency; currency_rate (stored, computed from date_order,
        # currency_id and company_id) is company currency -> order currency at date_order.
        m2o("currency_id", "res.currency", "Currency", required=True),
        flt("currency_rate", "Currency Rate", readonly=True),
    ]
    if v >= 19:
        po_fields.append(boolean("locked", "Locked"))
    _add(M, ModelDef("purchase.order", "Purchase Order", order="priority desc, id desc",
                     rec_names_search=("name", "partner_ref"), mail_thread=True), po_fields)
    uom_name = "product_uom_id" if v >= 19 else "product_uom"
    _add(M, ModelDef("purchase.order.line", "Purchase Order Line", order="order_id, sequence, id"), [
        m2o("order_id", "purchase.order", "Order Reference", required=True),
        m2o("product_id", "product.product", "Product"), text("name", "Description", required=True),
        integer("sequence", default=10), flt("product_qty", "Quantity", required=True),
        flt("product_uom_qty", "Total Quantity"), m2o(uom_name, "uom.uom", "Unit of Measure"),
        flt("price_unit", "Unit Price", required=True), flt("discount", "Discount (%)"),
        money("price_subtotal", "Subtotal"), money("price_total", "Total"),
        dt("date_planned", "Expected Arrival"), flt("qty_received", "Received Qty"),
        flt("qty_invoiced", "Billed Qty"),
        related("partner_id", "order_id.partner_id", "many2one", "Partner", relation="res.partner"),
        related("state", "order_id.state", "selection", "Status", selection=tuple(po_states)),
        m2o("company_id", "res.company", "Company"),
        o2m("move_ids", "stock.move", "purchase_line_id", "Reservation"),
        related("currency_id", "order_id.currency_id", "many2one", "Currency", relation="res.currency"),
    ])
    _add(M, ModelDef("sale.order", "Sales Order", order="date_order desc, id desc",
                     rec_names_search=("name",), mail_thread=True), [
        char("name", "Order Reference", required=True, default="New", index=True),
        sel("state", [("draft", "Quotation"), ("sent", "Quotation Sent"), ("sale", "Sales Order"),
                      *([("done", "Locked")] if v <= 16 else []), ("cancel", "Cancelled")],
            "Status", readonly=True, default="draft"),
        *([] if v <= 16 else [boolean("locked", "Locked")]), dt("date_order", "Order Date", required=True),
        dt("commitment_date", "Delivery Date"), date("validity_date", "Expiration"),
        m2o("partner_id", "res.partner", "Customer", required=True),
        m2o("partner_invoice_id", "res.partner", "Invoice Address"),
        m2o("partner_shipping_id", "res.partner", "Delivery Address"),
        money("amount_untaxed", "Untaxed Amount"), money("amount_tax", "Taxes"), money("amount_total", "Total"),
        m2o("user_id", "res.users", "Salesperson"), m2o("company_id", "res.company", "Company", required=True),
        char("client_order_ref", "Customer Reference", index=True), char("origin", "Source Document"),
        sel("invoice_status", [("upselling", "Upselling Opportunity"), ("invoiced", "Fully Invoiced"),
                               ("to invoice", "To Invoice"), ("no", "Nothing to Invoice")], "Invoice Status"),
        m2o("warehouse_id", "stock.warehouse", "Warehouse"),
        o2m("picking_ids", "stock.picking", "sale_id", "Transfers"),
        sel("delivery_status", [("pending", "Not Delivered"), ("started", "Started"),
                                ("partial", "Partially Delivered"), ("full", "Fully Delivered")],
            "Delivery Status"),
        m2o("carrier_id", "delivery.carrier", "Delivery Method"),
    ])
    _add(M, ModelDef("mail.activity.type", "Activity Type", order="sequence, id"), [
        char("name", required=True), text("summary", "Default Summary"), integer("sequence", default=10),
        sel("category", [("default", "None"), ("upload_file", "Upload Document"), ("phonecall", "Phonecall")],
            default="default"),
        char("res_model", "Model"), integer("delay_count", "Schedule"), boolean("active", default=True),
    ])
    _add(M, ModelDef("mail.activity", "Activity", order="date_deadline ASC, id ASC", rec_name="summary"), [
        m2o("res_model_id", "ir.model", "Document Model", required=True),
        char("res_model", "Related Document Model", index=True),
        ref("res_id", "res_model", "Related Document ID"),
        computed("res_name", "char", _mail_activity_res_name, "Document Name"),
        m2o("activity_type_id", "mail.activity.type", "Activity Type"), char("summary", "Summary"),
        html("note", "Note"), date("date_deadline", "Due Date", required=True),
        m2o("user_id", "res.users", "Assigned to", required=True),
        computed("state", "selection", _activity_state, "State",
                 selection=(("overdue", "Overdue"), ("today", "Today"), ("planned", "Planned"))),
        boolean("automated"), boolean("active", default=True),
        m2o("request_partner_id", "res.partner", "Requesting Partner"),
    ])
    _add(M, ModelDef("mail.message", "Message", order="id desc", rec_name="record_name"), [
        char("subject"), html("body", "Contents"), char("model", "Related Document Model", index=True),
        ref("res_id", "model", "Related Document ID"), char("record_name", "Message Record Name"),
        sel("message_type", [("email", "Incoming Email"), ("comment", "Comment"),
                             ("email_outgoing", "Outgoing Email"), ("notification", "System notification"),
                             ("auto_comment", "Automated Targeted Notification"),
                             ("user_notification", "User Specific Notification")], "Type", default="comment"),
        m2o("author_id", "res.partner", "Author"), dt("date", "Date"),
        boolean("is_internal", "Employee Only"),
    ])
    _add(M, ModelDef("ir.model", "Models", order="model"), [
        char("name", "Model Description", required=True), char("model", "Model", required=True, index=True),
        sel("state", [("manual", "Custom Object"), ("base", "Base Object")], default="base"),
        boolean("transient", "Transient Model"),
    ])
    _add(M, ModelDef("ir.model.data", "Model Data", order="module, model, name", rec_name="complete_name"), [
        char("name", "External Identifier", required=True, index=True),
        computed("complete_name", "char", _imd_complete_name, "Complete ID"),
        char("module", required=True, index=True), char("model", "Model Name", required=True, index=True),
        ref("res_id", "model", "Record ID"), boolean("noupdate", "Non Updatable"),
    ])
    if v <= 18:  # 19 renamed it stock.reference (not modelled)
        _add(M, ModelDef("procurement.group", "Procurement Group", order="id desc"), [
            char("name", "Reference", required=True), m2o("partner_id", "res.partner", "Address"),
            sel("move_type", [("direct", "Partial"), ("one", "All at once")], default="direct"),
        ])
    _add(M, ModelDef("delivery.carrier", "Shipping Methods", order="sequence, id"), [
        char("name", "Delivery Method", required=True), boolean("active", default=True),
        integer("sequence", default=10),
        sel("delivery_type", [("base_on_rule", "Based on Rules"), ("fixed", "Fixed Price")], "Provider",
            default="fixed", required=True),
        m2o("company_id", "res.company", "Company"), flt("fixed_price", "Fixed Price"),
        char("tracking_url", "Tracking Link"),
    ])
    # Last, so that the ir.model rows (and ids) of the models above stay as they were.
    _add(M, ModelDef("res.currency", "Currency", order="active desc, name",
                     rec_names_search=("name", "full_name")), [
        char("name", "Currency", required=True), char("full_name", "Name"), char("symbol", required=True),
        computed("rate", "float", _currency("current_rate"), "Current Rate"),
        computed("inverse_rate", "float", _currency("current_inverse_rate")),
        o2m("rate_ids", "res.currency.rate", "currency_id", "Rates"),
        flt("rounding", "Rounding Factor", default=0.01),
        computed("decimal_places", "integer", _currency("decimal_places")),
        boolean("active", default=True),
        sel("position", [("after", "After Amount"), ("before", "Before Amount")], "Symbol Position",
            default="after"),
        char("currency_unit_label", "Currency Unit"), char("currency_subunit_label", "Currency Subunit"),
    ])
    _add(M, ModelDef("res.currency.rate", "Currency Rate", order="name desc"), [
        date("name", "Date", required=True), flt("rate", "Technical Rate"),
        computed("company_rate", "float", _currency("company_rate")),
        computed("inverse_company_rate", "float", _currency("inverse_company_rate")),
        m2o("currency_id", "res.currency", "Currency", required=True, readonly=True),
        m2o("company_id", "res.company", "Company"),
    ])
    return M
