"""Odoo 17 domain semantics: a table of domains and the ids they must match (odoo.md §2.7).

A hand-built database with known ids, searched over real JSON-RPC by odoorpc.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import odoorpc
import pytest

from siteops.sim.odoo import Database, OdooSim


def _build() -> Database:
    db = Database("demo", 17)
    ins = db.insert
    ins("res.company", {"name": "Co"})
    ins("res.partner", {"name": "Azure Interior", "complete_name": "Azure Interior", "is_company": True})  # 1
    ins("res.partner", {"name": "Deco Addict", "complete_name": "Deco Addict", "is_company": True,
                        "email": "deco@example.com"})  # 2
    ins("res.partner", {"name": "Brandon", "complete_name": "Azure Interior, Brandon", "parent_id": 1})  # 3
    ins("res.partner", {"name": "Archived Co", "complete_name": "Archived Co", "active": False})  # 4
    ins("res.partner", {"name": "No Email", "complete_name": "No Email"})  # 5
    uid = ins("res.users", {"name": "Admin", "login": "admin", "partner_id": 1, "company_id": 1})
    db.passwords[uid] = "admin"
    ins("stock.location", {"name": "WH", "complete_name": "WH", "usage": "view"})  # 1
    ins("stock.location", {"name": "Stock", "complete_name": "WH/Stock", "location_id": 1})  # 2
    ins("stock.location", {"name": "Shelf 1", "complete_name": "WH/Stock/Shelf 1", "location_id": 2})  # 3
    ins("stock.location", {"name": "Customers", "complete_name": "Partners/Customers", "usage": "customer"})  # 4
    ins("product.category", {"name": "All", "complete_name": "All"})
    ins("product.product", {"name": "Bolt", "default_code": "FAS-1", "categ_id": 1})  # 1
    ins("product.product", {"name": "Pipe", "default_code": "PLU-2", "categ_id": 1})  # 2
    ins("stock.picking.type", {"name": "Moves", "code": "internal", "sequence_code": "INT", "company_id": 1})
    base = {"picking_type_id": 1, "location_dest_id": 4}
    ins("stock.picking", {**base, "name": "P1", "state": "draft", "partner_id": 1, "origin": "S001",
                          "scheduled_date": "2026-03-01 10:00:00", "location_id": 2})
    ins("stock.picking", {**base, "name": "P2", "state": "assigned", "partner_id": 2, "printed": True,
                          "scheduled_date": "2026-03-01 23:59:59", "location_id": 3, "priority": "1"})
    ins("stock.picking", {**base, "name": "P3", "state": "done", "origin": "P001",
                          "scheduled_date": "2026-03-02 00:00:00", "location_id": 4})
    ins("stock.picking", {**base, "name": "P4", "partner_id": 4, "origin": "S002",
                          "scheduled_date": "2026-02-28 08:00:00", "location_id": 3}, apply_defaults=False)
    ins("stock.move", {"picking_id": 1, "product_id": 1, "product_uom_qty": 5.0, "location_id": 2,
                       "location_dest_id": 4, "date": "2026-03-01 10:00:00"})  # 1
    ins("stock.move", {"picking_id": 1, "product_id": 2, "product_uom_qty": 1.0, "location_id": 2,
                       "location_dest_id": 4, "date": "2026-03-01 10:00:00"})  # 2
    ins("stock.move", {"picking_id": 2, "product_id": 2, "product_uom_qty": 7.0, "location_id": 3,
                       "location_dest_id": 4, "date": "2026-03-01 10:00:00"})  # 3
    return db


@pytest.fixture(scope="module")
def client() -> Iterator[odoorpc.ODOO]:
    with OdooSim(_build()) as sim:
        odoo = odoorpc.ODOO(sim.host, port=sim.port, version="17.0", timeout=10)
        odoo.login("demo", "admin", "admin")
        yield odoo


ALL = [1, 2, 3, 4]
PICKING_CASES: list[tuple[str, list[Any], list[int]]] = [
    ("empty domain is TRUE", [], ALL),
    ("equality", [("state", "=", "draft")], [1]),
    ("!= also matches NULL", [("state", "!=", "draft")], [2, 3, 4]),
    ("<> is !=", [("state", "<>", "draft")], [2, 3, 4]),
    ("operators are lower-cased", [("state", "IN", ["draft"])], [1]),
    ("= False is IS NULL", [("state", "=", False)], [4]),
    ("!= False is IS NOT NULL", [("state", "!=", False)], [1, 2, 3]),
    ("in [] matches nothing", [("state", "in", [])], []),
    ("not in [] matches everything", [("state", "not in", [])], ALL),
    ("in with False adds NULL", [("state", "in", ["draft", False])], [1, 4]),
    ("not in matches NULL", [("state", "not in", ["draft", "done"])], [2, 4]),
    ("not in with False excludes NULL", [("state", "not in", ["draft", False])], [2, 3]),
    ("= list becomes in", [("state", "=", ["draft", "done"])], [1, 3]),
    ("ilike is case-insensitive contains", [("origin", "ilike", "s0")], [1, 4]),
    ("not ilike matches NULL", [("origin", "not ilike", "s0")], [2, 3]),
    ("like is case-sensitive", [("origin", "like", "s0")], []),
    ("=like is a SQL pattern", [("origin", "=like", "S%")], [1, 4]),
    ("=ilike with _", [("origin", "=ilike", "p_01")], [3]),
    ("ilike '' matches everything, NULL too", [("origin", "ilike", "")], ALL),
    ("=? with False is TRUE", [("origin", "=?", False)], ALL),
    ("=? with a value is =", [("origin", "=?", "S001")], [1]),
    ("many2one = False", [("partner_id", "=", False)], [3]),
    ("many2one compared to a name", [("partner_id", "=", "Deco Addict")], [2]),
    ("many2one ilike a name", [("partner_id", "ilike", "deco")], [2]),
    ("many2one not ilike matches NULL and archived", [("partner_id", "not ilike", "azure")], [2, 3, 4]),
    ("dotted path includes archived comodel records", [("partner_id.name", "=", "Archived Co")], [4]),
    ("many2one any", [("partner_id", "any", [("is_company", "=", True)])], [1, 2]),
    ("many2one not any matches NULL", [("partner_id", "not any", [("is_company", "=", True)])], [3, 4]),
    ("two-level path", [("partner_id.child_ids.name", "=", "Brandon")], [1]),
    ("or", ["|", ("state", "=", "draft"), ("state", "=", "done")], [1, 3]),
    ("not pushes into the leaf (NULL follows !=)", ["!", ("state", "=", "draft")], [2, 3, 4]),
    ("not of an or", ["!", "|", ("state", "=", "draft"), ("state", "=", "done")], [2, 4]),
    ("implicit and with not", ["!", ("state", "=", "draft"), ("partner_id", "!=", False)], [2, 4]),
    ("nested prefix", ["|", "&", ("state", "=", "draft"), ("origin", "=", "S001"), ("id", "=", 3)], [1, 3]),
    ("datetime > date means after the day", [("scheduled_date", ">", "2026-03-01")], [3]),
    ("datetime >= date means from its start", [("scheduled_date", ">=", "2026-03-01")], [1, 2, 3]),
    ("datetime <= date means to its end", [("scheduled_date", "<=", "2026-03-01")], [1, 2, 4]),
    ("datetime < date", [("scheduled_date", "<", "2026-03-01")], [4]),
    ("datetime = full value", [("scheduled_date", "=", "2026-03-01 23:59:59")], [2]),
    ("child_of by id includes the record", [("location_id", "child_of", 2)], [1, 2, 4]),
    ("child_of by name", [("location_id", "child_of", "WH/Stock")], [1, 2, 4]),
    ("child_of False matches nothing", [("location_id", "child_of", False)], []),
    ("parent_of", [("location_id", "parent_of", [2])], [1]),
    ("x2many path", [("move_ids.product_id.default_code", "=", "PLU-2")], [1, 2]),
    ("x2many any", [("move_ids", "any", [("product_uom_qty", ">", 6)])], [2]),
    ("x2many not any", [("move_ids", "not any", [("product_uom_qty", ">", 6)])], [1, 3, 4]),
    ("x2many = False: no lines", [("move_ids", "=", False)], [3, 4]),
    ("x2many != False: has lines", [("move_ids", "!=", False)], [1, 2]),
    ("x2many contains an id", [("move_ids", "in", [3])], [2]),
    ("x2many = id", [("move_ids", "=", 2)], [1]),
    ("x2many not in", [("move_ids", "not in", [3])], [1, 3, 4]),
    ("id keyset", [("id", ">", 2)], [3, 4]),
    ("id in drops unknown ids", [("id", "in", [1, 99])], [1]),
    ("TRUE leaf", [(1, "=", 1)], ALL),
    ("FALSE leaf", [(0, "=", 1)], []),
    ("boolean = False matches unset", [("printed", "=", False)], [1, 3, 4]),
    ("boolean != True", [("printed", "!=", True)], [1, 3, 4]),
    ("html empty", [("note", "=", False)], ALL),
    ("related field (picking_type_code)", [("picking_type_code", "=", "internal")], ALL),
    ("selection ordering operator", [("priority", ">", "0")], [2]),
]


@pytest.mark.parametrize("case,domain,expected", PICKING_CASES, ids=[c[0] for c in PICKING_CASES])
def test_picking_domains(client: odoorpc.ODOO, case: str, domain: list[Any], expected: list[int]) -> None:
    assert client.execute_kw("stock.picking", "search", [domain], {"order": "id"}) == expected


@pytest.mark.parametrize("model,domain,context,expected", [
    ("res.partner", [], {}, [1, 2, 3, 5]),
    ("res.partner", [("active", "=", False)], {}, [4]),
    ("res.partner", [], {"active_test": False}, [1, 2, 3, 4, 5]),
    ("res.partner", [("email", "=", False)], {}, [1, 3, 5]),
    ("res.partner", [("child_ids", "!=", False)], {}, [1]),
    ("res.partner", [("id", "child_of", 1)], {}, [1, 3]),
    ("res.partner", [("display_name", "ilike", "azure")], {}, [1, 3]),
    ("stock.location", [("id", "parent_of", 3)], {}, [1, 2, 3]),
    ("stock.location", [("id", "child_of", [1])], {}, [1, 2, 3]),
    ("stock.move", [("product_uom_qty", ">=", 5)], {}, [1, 3]),
    ("stock.move", [("picking_id.state", "=", "draft")], {}, [1, 2]),
])
def test_other_domains(client: odoorpc.ODOO, model: str, domain: list[Any], context: dict[str, Any],
                       expected: list[int]) -> None:
    kwargs: dict[str, Any] = {"order": "id"}
    if context:
        kwargs["context"] = context
    assert client.execute_kw(model, "search", [domain], kwargs) == expected


@pytest.mark.parametrize("domain,message", [
    (["|", ("state", "=", "draft")], "is syntactically not correct"),
    ([("state", "~", "draft")], "Invalid leaf"),
    ([("nope", "=", 1)], "Invalid field stock.picking.nope"),
    ([("state.name", "=", 1)], "Invalid field"),
])
def test_invalid_domains_are_value_errors(client: odoorpc.ODOO, domain: list[Any], message: str) -> None:
    with pytest.raises(odoorpc.error.RPCError) as exc:
        client.execute_kw("stock.picking", "search", [domain])
    assert exc.value.info["data"]["name"] == "builtins.ValueError"
    assert message in exc.value.info["data"]["message"]


def test_order_limit_offset(client: odoorpc.ODOO) -> None:
    # Default _order: priority desc (NULLs first, like PostgreSQL), scheduled_date asc, id desc.
    assert client.execute_kw("stock.picking", "search", [[]]) == [4, 2, 1, 3]
    assert client.execute_kw("stock.picking", "search", [[]], {"order": "name desc", "limit": 2}) == [4, 3]
    assert client.execute_kw("stock.picking", "search", [[]], {"order": "state desc nulls last, id"}) == [1, 3, 2, 4]
    # Ordering by a many2one follows the comodel's _order (complete_name): Archived Co first.
    assert client.execute_kw("stock.picking", "search", [[]], {"order": "partner_id, id", "offset": 1}) == [1, 2, 3]
    assert client.execute_kw("stock.picking", "search", [[]], {"order": "id desc", "offset": 1, "limit": 2}) == [3, 2]
    with pytest.raises(odoorpc.error.RPCError):
        client.execute_kw("stock.picking", "search", [[]], {"order": "id; drop table"})
