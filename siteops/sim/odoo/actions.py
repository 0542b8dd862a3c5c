"""Business behaviour: create/write hooks (names, computed stored fields) and the buttons.

Simplified but state-faithful: `action_assign` reserves against quants, `button_validate`
moves stock and splits a backorder for partly done moves, `button_confirm` on a purchase
order creates its receipt. Wizards are not simulated: a partial validation always
creates the backorder (the picking type's "Always" policy). What the buttons change goes
through `_write` / `_insert`, so write_date moves and automation rules fire as in Odoo.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from siteops.sim.odoo import currency, webhooks
from siteops.sim.odoo.store import BuiltinError, Table, UserError, now_str

if TYPE_CHECKING:
    from siteops.sim.odoo.orm import Env

TAX_RATE = 0.15


def _row(env: Env, model: str, rid: Any) -> dict[str, Any]:
    return env.db.tables[model].rows.get(rid or 0) or {}


def _write(env: Env, table: Table, rid: int, vals: dict[str, Any]) -> None:
    """What a business method's `self.write(vals)` does: stamps, and the automation rules
    (base_automation patches `write`, so a button's state change fires them). Values that
    change nothing are not written (Odoo's state is a recompute, which fires only on change)."""
    row = table.rows[rid]
    if all(row.get(k, table.fields[k].empty) == (None if v is False and table.fields[k].type != "boolean" else v)
           for k, v in vals.items()):
        return
    before = webhooks.snapshot(env, table, rid)
    table.update(rid, {**vals, "write_date": now_str(), "write_uid": env.uid})
    webhooks.fire(env, table, rid, "write", before)


def _insert(env: Env, model: str, vals: dict[str, Any]) -> int:
    """A record a business method creates (no create hooks), with the automation rules."""
    rid = env.db.insert(model, vals, uid=env.uid)
    webhooks.fire(env, env.db.tables[model], rid, "create")
    return rid


def _po_currency_rate(env: Env, vals: dict[str, Any]) -> float:
    """purchase.order.currency_rate: company currency -> order currency at date_order."""
    company = vals.get("company_id")
    return currency.conversion_rate(env.db, currency.company_currency(env.db, company), vals.get("currency_id"),
                                    company, str(vals.get("date_order") or env.db.today()))


def before_create(env: Env, table: Table, vals: dict[str, Any]) -> None:
    db = env.db
    model = table.name
    if model == "product.product" and not vals.get("product_tmpl_id") and "name" in vals:
        # Odoo's _inherits: a product created alone gets a template of its own.
        tmpl = env.db.tables["product.template"]
        names = ("name", "default_code", "categ_id", "uom_id", "list_price", "standard_price", "company_id", "type")
        shared: dict[str, Any] = {k: vals[k] for k in names if k in vals and k in tmpl.fields}
        vals["product_tmpl_id"] = db.insert("product.template", shared, uid=env.uid)
    elif model == "product.supplierinfo" and not vals.get("product_tmpl_id") and vals.get("product_id"):
        vals["product_tmpl_id"] = _row(env, "product.product", vals["product_id"]).get("product_tmpl_id")
    elif model == "stock.picking":
        ptype = _row(env, "stock.picking.type", vals.get("picking_type_id"))
        vals.setdefault("location_id", ptype.get("default_location_src_id"))
        vals.setdefault("location_dest_id", ptype.get("default_location_dest_id"))
        vals.setdefault("company_id", ptype.get("company_id"))
        vals.setdefault("user_id", env.uid)
        vals.setdefault("scheduled_date", now_str())
        if "date" in table.fields:  # gone in 19
            vals.setdefault("date", now_str())
        if vals.get("name", "/") == "/" and ptype:
            wh = _row(env, "stock.warehouse", ptype.get("warehouse_id"))
            prefix = f"{wh.get('code', 'WH')}/{ptype.get('sequence_code', 'TR')}/"
            vals["name"] = db.next_name(prefix)
    elif model == "stock.move":
        picking = _row(env, "stock.picking", vals.get("picking_id"))
        for name in ("location_id", "location_dest_id", "picking_type_id", "company_id", "partner_id"):
            if vals.get(name) is None and picking.get(name) is not None:
                vals[name] = picking[name]
        vals.setdefault("date", picking.get("scheduled_date") or now_str())
        vals.setdefault("reference", picking.get("name"))
        vals.setdefault("product_qty", vals.get("product_uom_qty", 0.0))
        if picking and picking.get("state") not in (None, "draft"):
            vals.setdefault("state", picking["state"])
        ptype = _row(env, "stock.picking.type", vals.get("picking_type_id"))
        vals.setdefault("warehouse_id", ptype.get("warehouse_id"))
        product = _row(env, "product.product", vals.get("product_id"))
        vals.setdefault("name", product.get("name"))
        vals.setdefault("product_uom", product.get("uom_id"))
    elif model == "purchase.order":
        if vals.get("name", "New") == "New":
            vals["name"] = db.next_name("P", 5)
        vals.setdefault("date_order", now_str())
        vals.setdefault("user_id", env.uid)
        vals.setdefault("company_id", 1)
        # The company's currency (create() takes defaults with_company(company_id)); the
        # vendor's purchase currency comes from the form's onchange, never from create.
        if not vals.get("currency_id"):
            vals["currency_id"] = currency.company_currency(env.db, vals["company_id"])
        vals["currency_rate"] = _po_currency_rate(env, vals)
    elif model == "purchase.order.line":
        qty = float(vals.get("product_qty", 0.0))
        subtotal = qty * float(vals.get("price_unit", 0.0)) * (1 - float(vals.get("discount", 0.0)) / 100)
        vals.update(product_uom_qty=qty, price_subtotal=round(subtotal, 2),
                    price_total=round(subtotal * (1 + TAX_RATE), 2))
        if not vals.get("name"):
            product = _row(env, "product.product", vals.get("product_id"))
            vals["name"] = env.db.display_name(env.db.tables["product.product"], product) if product else "/"
    elif model == "sale.order":
        if vals.get("name", "New") == "New":
            vals["name"] = db.next_name("S", 5)
        vals.setdefault("date_order", now_str())
        vals.setdefault("company_id", 1)
    elif model == "mail.activity":
        imodel = _row(env, "ir.model", vals.get("res_model_id"))
        vals["res_model"] = imodel.get("model")
        document = db.tables.get(str(vals["res_model"]))
        if document is not None and not document.mdef.mail_thread:
            # Odoo's mail.activity.create subscribes the assignee to the document
            # (message_subscribe): a model without mail.thread has no such method.
            raise BuiltinError("AttributeError", f"'{document.name}' object has no attribute 'message_subscribe'")
        if document is not None and vals.get("res_id") not in document.rows:
            env._existing(document, [int(vals.get("res_id") or 0)])
        vals.setdefault("user_id", env.uid)
        vals.setdefault("date_deadline", db.today())
        if not vals.get("activity_type_id"):
            todo = db.tables["ir.model.data"].lookup("name", "mail_activity_data_todo")
            vals["activity_type_id"] = _row(env, "ir.model.data", next(iter(todo), 0)).get("res_id")
    elif model == "res.company" and not vals.get("currency_id"):
        vals["currency_id"] = currency.company_currency(env.db, _row(env, "res.users", env.uid).get("company_id"))
    elif model == "stock.quant":
        _quant_diff(vals, {})
    elif model == "res.partner":
        parent = _row(env, "res.partner", vals.get("parent_id"))
        name = vals.get("name") or ""
        vals["complete_name"] = f"{parent.get('name')}, {name}" if parent and name else name or False
        vals.setdefault("company_type", "company" if vals.get("is_company") else "person")


def _quant_diff(vals: dict[str, Any], row: dict[str, Any]) -> None:
    merged = {**row, **vals}
    if "inventory_quantity" in vals and "inventory_quantity_set" not in vals:
        vals["inventory_quantity_set"] = True
        merged["inventory_quantity_set"] = True
    if merged.get("inventory_quantity_set"):
        diff = float(merged.get("inventory_quantity", 0.0)) - float(merged.get("quantity", 0.0))
        vals["inventory_diff_quantity"] = diff
    elif "inventory_quantity_set" in vals:
        vals["inventory_diff_quantity"] = 0.0


def after_create(env: Env, table: Table, rid: int) -> None:
    if table.name == "purchase.order.line":
        _po_amounts(env, table.rows[rid]["order_id"])


def before_write(env: Env, table: Table, rid: int, vals: dict[str, Any]) -> None:
    if table.name == "stock.quant" and ({"inventory_quantity", "quantity", "inventory_quantity_set"} & set(vals)):
        _quant_diff(vals, table.rows[rid])
    if table.name == "purchase.order" and {"date_order", "currency_id", "company_id"} & set(vals):
        vals["currency_rate"] = _po_currency_rate(env, {**table.rows[rid], **vals})


def _po_amounts(env: Env, order_id: int) -> None:
    lines = env.db.tables["purchase.order.line"]
    untaxed = sum(lines.rows[i].get("price_subtotal", 0.0) for i in lines.lookup("order_id", order_id))
    env.db.tables["purchase.order"].update(order_id, {
        "amount_untaxed": round(untaxed, 2), "amount_tax": round(untaxed * TAX_RATE, 2),
        "amount_total": round(untaxed * (1 + TAX_RATE), 2)})


# -- stock ----------------------------------------------------------------------------------


def _moves(env: Env, picking_id: int) -> list[int]:
    return sorted(env.db.tables["stock.move"].lookup("picking_id", picking_id))


def _quants_at(env: Env, product_id: int, location_id: int) -> list[int]:
    quants = env.db.tables["stock.quant"]
    return sorted(quants.lookup("product_id", product_id) & quants.lookup("location_id", location_id))


def _is_internal(env: Env, location_id: Any) -> bool:
    return _row(env, "stock.location", location_id).get("usage", "internal") == "internal"


def _add_quant(env: Env, product_id: int, location_id: int, qty: float, reserved: float = 0.0) -> None:
    quants = env.db.tables["stock.quant"]
    found = _quants_at(env, product_id, location_id)
    if found:
        row = quants.rows[found[0]]
        _write(env, quants, found[0], {"quantity": row.get("quantity", 0.0) + qty,
                                        "reserved_quantity": max(0.0, row.get("reserved_quantity", 0.0) + reserved)})
    else:
        _insert(env, "stock.quant", {"product_id": product_id, "location_id": location_id, "quantity": qty,
                                     "reserved_quantity": max(0.0, reserved), "in_date": now_str(), "company_id": 1})


def picking_confirm(env: Env, table: Table, ids: list[int]) -> bool:
    moves = env.db.tables["stock.move"]
    for pid in ids:
        if table.rows[pid].get("state", "draft") == "draft":
            for mid in _moves(env, pid):
                _write(env, moves, mid, {"state": "confirmed"})
            _write(env, table, pid, {"state": "confirmed"})
    return True


def picking_assign(env: Env, table: Table, ids: list[int]) -> bool:
    picking_confirm(env, table, ids)
    moves = env.db.tables["stock.move"]
    quants = env.db.tables["stock.quant"]
    qf = env.db.fname("stock.move", "quantity")  # 16: quantity_done
    for pid in ids:
        if table.rows[pid].get("state") not in ("confirmed", "waiting", "assigned"):
            continue
        any_ready = False
        for mid in _moves(env, pid):
            move = moves.rows[mid]
            if move.get("state") in ("assigned", "done", "cancel"):
                any_ready = any_ready or move.get("state") == "assigned"
                continue
            need = move.get("product_uom_qty", 0.0)
            if not _is_internal(env, move.get("location_id")):
                _write(env, moves, mid, {"state": "assigned", qf: need})
                any_ready = True
                continue
            for qid in _quants_at(env, move["product_id"], move["location_id"]):
                q = quants.rows[qid]
                free = q.get("quantity", 0.0) - q.get("reserved_quantity", 0.0)
                take = max(0.0, min(free, need - move.get(qf, 0.0)))
                if take:
                    _write(env, quants, qid, {"reserved_quantity": q.get("reserved_quantity", 0.0) + take})
                    _write(env, moves, mid, {qf: move.get(qf, 0.0) + take})
            got = move.get(qf, 0.0)
            state = "assigned" if got >= need else ("partially_available" if got > 0 else "confirmed")
            _write(env, moves, mid, {"state": state})
            any_ready = any_ready or got > 0
        _write(env, table, pid, {"state": "assigned" if any_ready else "confirmed"})
    return True


def picking_validate(env: Env, table: Table, ids: list[int]) -> Any:
    moves = env.db.tables["stock.move"]
    qf = env.db.fname("stock.move", "quantity")  # 16: quantity_done
    stamp = now_str()
    for pid in ids:
        picking = table.rows[pid]
        state = picking.get("state", "draft")
        if state == "done":
            continue
        if state == "cancel":
            raise UserError("You cannot validate a transfer that is cancelled.")
        move_ids = _moves(env, pid)
        if not move_ids:
            raise UserError("Please add some items to move.")
        if state == "draft":
            picking_confirm(env, table, [pid])
        leftovers = []
        for mid in move_ids:
            move = moves.rows[mid]
            if move.get("state") in ("done", "cancel"):
                continue
            demand = move.get("product_uom_qty", 0.0)
            done = move.get(qf, 0.0) if move.get("picked") or move.get(qf) else demand
            done = min(done, demand) or demand
            reserved = move.get(qf, 0.0) if _is_internal(env, move.get("location_id")) else 0.0
            if _is_internal(env, move.get("location_id")):
                _add_quant(env, move["product_id"], move["location_id"], -done, -reserved)
            if _is_internal(env, move.get("location_dest_id")):
                _add_quant(env, move["product_id"], move["location_dest_id"], done)
            _write(env, moves, mid, env.db.adapt("stock.move", {"state": "done", "quantity": done, "picked": True,
                                                                "date": stamp}))
            if done < demand:
                leftovers.append((move, demand - done))
        _write(env, table, pid, {"state": "done", "date_done": stamp})
        if leftovers:
            _backorder(env, table, picking, leftovers)
    return True


def _backorder(env: Env, table: Table, picking: dict[str, Any], leftovers: list[tuple[dict, float]]) -> int:
    keep = ("picking_type_id", "location_id", "location_dest_id", "partner_id", "origin", "scheduled_date",
            "company_id", "user_id", "sale_id", "purchase_id", "carrier_id", "move_type", "priority")
    vals: dict[str, Any] = {k: picking[k] for k in keep if k in picking}
    vals["backorder_id"] = picking["id"]
    vals["move_ids"] = [(0, 0, {"product_id": m["product_id"], "product_uom_qty": qty,
                                "purchase_line_id": m.get("purchase_line_id") or False})
                        for m, qty in leftovers]
    bid = env.create_one(table, vals)
    picking_confirm(env, table, [bid])
    return bid


def picking_cancel(env: Env, table: Table, ids: list[int]) -> bool:
    moves = env.db.tables["stock.move"]
    for pid in ids:
        if table.rows[pid].get("state") == "done":
            raise UserError("You cannot cancel a transfer that is done.")
        for mid in _moves(env, pid):
            _write(env, moves, mid, {"state": "cancel"})
        _write(env, table, pid, {"state": "cancel"})
    return True


def picking_unreserve(env: Env, table: Table, ids: list[int]) -> None:
    """Like Odoo's `do_unreserve`, returns None (so the JSON-RPC reply has no `result`)."""
    moves = env.db.tables["stock.move"]
    quants = env.db.tables["stock.quant"]
    for pid in ids:
        for mid in _moves(env, pid):
            move = moves.rows[mid]
            if move.get("state") not in ("assigned", "partially_available"):
                continue
            if _is_internal(env, move.get("location_id")):
                left = move.get(env.db.fname("stock.move", "quantity"), 0.0)
                for qid in _quants_at(env, move["product_id"], move["location_id"]):
                    q = quants.rows[qid]
                    give = min(left, q.get("reserved_quantity", 0.0))
                    _write(env, quants, qid, {"reserved_quantity": q.get("reserved_quantity", 0.0) - give})
                    left -= give
            _write(env, moves, mid, env.db.adapt("stock.move", {"state": "confirmed", "quantity": 0.0}))
        if table.rows[pid].get("state") == "assigned":
            _write(env, table, pid, {"state": "confirmed"})


def quant_apply_inventory(env: Env, table: Table, ids: list[int]) -> bool:
    db = env.db
    inv_loc = next(iter(db.tables["stock.location"].lookup("usage", "inventory")), None)
    for qid in ids:
        q = table.rows[qid]
        if not q.get("inventory_quantity_set"):
            continue
        diff = q.get("inventory_quantity", 0.0) - q.get("quantity", 0.0)
        if diff:
            src, dst = (inv_loc, q["location_id"]) if diff > 0 else (q["location_id"], inv_loc)
            _insert(env, "stock.move", db.adapt("stock.move", {
                "product_id": q["product_id"], "product_uom_qty": abs(diff), "quantity": abs(diff), "state": "done",
                "date": now_str(), "location_id": src, "location_dest_id": dst, "is_inventory": True,
                "name": "Product Quantity Updated", "company_id": 1, "picked": True}))
        _write(env, table, qid, {"quantity": q.get("inventory_quantity", 0.0), "inventory_quantity": 0.0,
                                 "inventory_diff_quantity": 0.0, "inventory_quantity_set": False,
                                 "last_count_date": db.today()})
    return True


# -- purchase and sale ------------------------------------------------------------------------


def _receipt(env: Env, order: dict[str, Any]) -> None:
    lines = env.db.tables["purchase.order.line"]
    moves = []
    for lid in sorted(lines.lookup("order_id", order["id"])):
        line = lines.rows[lid]
        if line.get("product_id"):
            moves.append((0, 0, {"product_id": line["product_id"], "product_uom_qty": line.get("product_qty", 0.0),
                                 "purchase_line_id": lid}))
    if not moves:
        return
    pickings = env.db.tables["stock.picking"]
    pid = env.create_one(pickings, {
        "picking_type_id": order.get("picking_type_id"), "partner_id": order.get("partner_id"),
        "origin": order.get("name"), "purchase_id": order["id"], "move_ids": moves,
        "scheduled_date": order.get("date_planned") or now_str()})
    picking_assign(env, pickings, [pid])


def _is_purchase_manager(env: Env) -> bool:
    refs = env.db.tables["ir.model.data"]
    manager = next((refs.rows[r]["res_id"] for r in refs.lookup("name", "group_purchase_manager")
                    if refs.rows[r].get("module") == "purchase"), None)
    groups = _row(env, "res.users", env.uid).get("groups_id") or ()
    return manager is not None and manager in groups


def double_validation_limit(env: Env, order: dict[str, Any]) -> float:
    """The company's double validation amount in the order's currency, as Odoo 17 converts
    it: from `env.company.currency_id` (the user's company) with the rate of the order's
    company at the order's date (`date_order or today`)."""
    company = _row(env, "res.company", order.get("company_id"))
    user_company = _row(env, "res.users", env.uid).get("company_id") or order.get("company_id")
    return currency.convert(env.db, float(company.get("po_double_validation_amount") or 0.0),
                            currency.company_currency(env.db, user_company), order.get("currency_id"),
                            order.get("company_id"), str(order.get("date_order") or env.db.today()))


def _approval_allowed(env: Env, order: dict[str, Any]) -> bool:
    """Odoo 17's purchase.order._approval_allowed: the company validates in one step; or
    two steps and the order's total is below the double validation amount converted to
    the order's currency; or the user is a Purchase Manager."""
    company = _row(env, "res.company", order.get("company_id"))
    if company.get("po_double_validation", "one_step") == "one_step":
        return True
    if order.get("amount_total", 0.0) < double_validation_limit(env, order):
        return True
    return _is_purchase_manager(env)


def po_confirm(env: Env, table: Table, ids: list[int]) -> bool:
    for oid in ids:
        order = table.rows[oid]
        if order.get("state", "draft") not in ("draft", "sent"):
            continue
        if _approval_allowed(env, order):
            po_approve(env, table, [oid])
        else:
            _write(env, table, oid, {"state": "to approve"})
    return True


def po_approve(env: Env, table: Table, ids: list[int], force: bool = False) -> dict[str, Any]:
    # As in Odoo 17, orders the user may not approve are skipped without an error.
    for oid in ids:
        order = table.rows[oid]
        if order.get("state", "draft") not in ("to approve", "draft", "sent") or not _approval_allowed(env, order):
            continue
        _write(env, table, oid, {"state": "purchase", "date_approve": now_str()})
        _receipt(env, table.rows[oid])
    return {}


def po_cancel(env: Env, table: Table, ids: list[int]) -> bool:
    for oid in ids:
        _write(env, table, oid, {"state": "cancel"})
    return True


def so_confirm(env: Env, table: Table, ids: list[int]) -> bool:
    for oid in ids:
        if table.rows[oid].get("state", "draft") in ("draft", "sent"):
            _write(env, table, oid, {"state": "sale"})
    return True


def activity_feedback(env: Env, table: Table, ids: list[int], feedback: Any = False,
                      attachment_ids: Any = None) -> Any:
    message_id: Any = False
    for aid in ids:
        act = table.rows[aid]
        target = env.db.tables.get(act.get("res_model") or "")
        if target is not None and act.get("res_id") in target.rows:
            message_id = env.m_message_post(target, [act["res_id"]], body=feedback or act.get("summary") or "",
                                            message_type="notification").ids[0]
        table.delete(aid)
    return message_id


ACTIONS: dict[tuple[str, str], Callable[..., Any]] = {
    ("stock.picking", "action_confirm"): lambda env, t, ids: picking_confirm(env, t, ids),
    ("stock.picking", "action_assign"): lambda env, t, ids: picking_assign(env, t, ids),
    ("stock.picking", "button_validate"): lambda env, t, ids: picking_validate(env, t, ids),
    ("stock.picking", "action_cancel"): lambda env, t, ids: picking_cancel(env, t, ids),
    ("stock.picking", "do_unreserve"): lambda env, t, ids: picking_unreserve(env, t, ids),
    ("stock.quant", "action_apply_inventory"): lambda env, t, ids: quant_apply_inventory(env, t, ids),
    ("purchase.order", "button_confirm"): lambda env, t, ids: po_confirm(env, t, ids),
    ("purchase.order", "button_approve"): lambda env, t, ids, force=False: po_approve(env, t, ids),
    ("purchase.order", "button_cancel"): lambda env, t, ids: po_cancel(env, t, ids),
    ("sale.order", "action_confirm"): lambda env, t, ids: so_confirm(env, t, ids),
    ("mail.activity", "action_feedback"): activity_feedback,
}
