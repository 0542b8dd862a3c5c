"""`search` with Odoo's `order` grammar, default `_order`, offset and limit."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from siteops.sim.odoo.domain import Compiler, run
from siteops.sim.odoo.store import Database, Table, invalid

# 17.0 models.py regex_order: field[.property][:func] [asc|desc] [nulls first|nulls last]
_ORDER_TERM = re.compile(r"^\s*(?P<field>[a-z0-9_]+(?:\.[a-z0-9_]+)?)(?::[a-z_]+)?"
                         r"(?:\s+(?P<dir>asc|desc))?(?:\s+nulls\s+(?P<nulls>first|last))?\s*$", re.I)


def parse_order(table: Table, order: str) -> list[tuple[str, bool, bool]]:
    """[(field, descending, nulls_first)]; Postgres puts NULLs last ascending, first descending."""
    terms = []
    for raw in order.split(","):
        m = _ORDER_TERM.match(raw)
        if not m:
            raise invalid(f'Invalid "order" specified ({order}). A valid "order" specification is a '
                          f"comma-separated list of valid field names (optionally followed by asc/desc "
                          f"for the direction)")
        name = m.group("field").split(".")[0]
        f = table.fields.get(name)
        if f is None or (not f.store and name != "id") or f.type in ("one2many", "many2many"):
            raise invalid(f"Invalid field {name!r} on model {table.name!r}"
                          if f is None else f'Cannot order by non-stored field {name!r} on {table.name}')
        desc = (m.group("dir") or "asc").lower() == "desc"
        nulls = m.group("nulls")
        nulls_first = desc if nulls is None else nulls.lower() == "first"
        terms.append((name, desc, nulls_first))
    return terms


def _rank(db: Database, model: str, depth: int) -> dict[int, int]:
    """Position of every record of `model` in its own `_order` (to order by a many2one)."""
    table = db.table(model)
    ids = sort_ids(db, table, list(table.ids), table.mdef.order, depth + 1)
    return {rid: pos for pos, rid in enumerate(ids)}


def sort_ids(db: Database, table: Table, ids: list[int], order: str, depth: int = 0) -> list[int]:
    terms = parse_order(table, order)
    rows = table.rows
    if terms and terms[0][0] == "id":
        return sorted(ids, reverse=terms[0][1])
    for name, desc, nulls_first in reversed(terms):
        key: Callable[[int], Any]
        if name == "id":
            key = lambda rid: (1, rid)  # noqa: E731
        else:
            f = table.fields[name]
            empty = f.empty
            null_key = (1,) if nulls_first == desc else (0,)
            present = 0 if nulls_first == desc else 1
            if f.type == "many2one" and depth < 2:
                assert f.relation
                rank = _rank(db, f.relation, depth)

                def key(rid: int, name: str = name, rank: dict[int, int] = rank,
                        null_key: tuple[int, ...] = null_key, present: int = present) -> Any:
                    v = rows[rid].get(name)
                    return null_key if v is None else (present, rank.get(v, v))
            else:
                def key(rid: int, name: str = name, empty: Any = empty,
                        null_key: tuple[int, ...] = null_key, present: int = present) -> Any:
                    v = rows[rid].get(name, empty)
                    return null_key if v is None else (present, v)
        ids.sort(key=key, reverse=desc)
    return ids


def search(db: Database, model: str, domain: Any, context: dict[str, Any] | None = None, *,
           offset: int = 0, limit: int | None = None, order: str | None = None) -> list[int]:
    table = db.table(model)
    context = context or {}
    active_test = context.get("active_test", True) is not False
    node = Compiler(db, table, active_test=active_test).compile(domain if domain is not None else [])
    offset = int(offset or 0)
    # `limit=0` is no limit, like None: Odoo's Query adds LIMIT only `if self.limit` (odoo.md §9 item 5).
    limit = int(limit) if limit else None
    order = order or table.mdef.order
    terms = parse_order(table, order)
    if terms[0][0] == "id":
        # Keyset-friendly: walk ids in order and stop as soon as the page is full.
        stop = offset + limit if limit is not None else None
        ids = run(node, table, stop_after=stop, descending=terms[0][1])
    else:
        ids = sort_ids(db, table, run(node, table), order)
    if offset:
        ids = ids[offset:]
    if limit is not None:
        ids = ids[:limit]
    return ids


def count(db: Database, model: str, domain: Any, context: dict[str, Any] | None = None,
          limit: int | None = None) -> int:
    table = db.table(model)
    active_test = (context or {}).get("active_test", True) is not False
    node = Compiler(db, table, active_test=active_test).compile(domain if domain is not None else [])
    return len(run(node, table, stop_after=int(limit) if limit else None))
