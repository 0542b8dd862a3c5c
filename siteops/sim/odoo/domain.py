"""Odoo 17 domain semantics over the in-memory tables (odoo.md §2.7).

A domain compiles into a tree of closures `row -> bool`, plus, where an index can answer
exactly, the set of matching ids; a top-level AND intersects those sets so a search
only tests candidate rows. An `('id', '>', n)` bound (keyset pagination) starts the
scan at `n` in the sorted id list instead of scanning everything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from siteops.sim.odoo.models import X2MANY, Field
from siteops.sim.odoo.store import Database, Table, invalid

TERM_OPERATORS = ("=", "!=", "<=", "<", ">", ">=", "=?", "=like", "=ilike", "like", "not like",
                  "ilike", "not ilike", "in", "not in", "child_of", "parent_of", "any", "not any")
NEGATIVE_TERM_OPERATORS = ("!=", "not like", "not ilike", "not in")
NEGATION = {"<": ">=", ">": "<=", "<=": ">", ">=": "<", "=": "!=", "!=": "=", "in": "not in",
            "not in": "in", "like": "not like", "not like": "like", "ilike": "not ilike",
            "not ilike": "ilike", "any": "not any", "not any": "any"}
LIKE_OPS = ("like", "not like", "ilike", "not ilike", "=like", "=ilike")
# Non-stored computed fields that real Odoo can search (they have a `search=` method).
SEARCHABLE_COMPUTES = frozenset({"display_name", "qty_available"})

Test = Callable[[dict[str, Any]], bool]


@dataclass
class Node:
    test: Test
    ids: set[int] | None = None  # exact matching ids, when an index could tell
    id_lower: tuple[int, bool] | None = None  # ('id', '>', n) / ('id', '>=', n): (n, inclusive)
    always: bool | None = None  # constant TRUE / FALSE


TRUE = Node(lambda row: True, always=True)
FALSE = Node(lambda row: False, ids=set(), always=False)


def _is_operator(token: Any) -> bool:
    return isinstance(token, str) and token in ("&", "|", "!")


def normalize(domain: Any) -> list[Any]:
    """Insert the implicit '&'s; reject unbalanced domains like Odoo does."""
    if not isinstance(domain, list | tuple):
        raise invalid(f"Invalid domain {domain!r}")
    if not domain:
        return []
    result: list[Any] = []
    expected = 1
    for token in domain:
        if expected == 0:
            result[0:0] = ["&"]
            expected = 1
        if _is_operator(token):
            expected += 0 if token == "!" else 1
        elif isinstance(token, list | tuple) and len(token) == 3:
            expected -= 1
        else:
            raise invalid(f"Invalid leaf {token!r}")
        result.append(token)
    if expected != 0:
        raise invalid(f"Domain {list(domain)!r} is syntactically not correct.")
    return result


class Compiler:
    def __init__(self, db: Database, table: Table, active_test: bool = True) -> None:
        self.db = db
        self.table = table
        self.active_test = active_test

    def compile(self, domain: Any) -> Node:
        tokens = normalize(domain)
        if not tokens:
            node = TRUE
        else:
            _, node = self._parse(tokens, 0)
        if self.active_test and self.table.mdef.has_active and not _mentions_active(tokens):
            node = self._and([self._leaf("active", "=", True), node])
        return node

    def _parse(self, tokens: list[Any], pos: int) -> tuple[int, Node]:
        token = tokens[pos]
        if token == "!":
            pos, child = self._parse_negated(tokens, pos + 1)
            return pos, child
        if token in ("&", "|"):
            pos, left = self._parse(tokens, pos + 1)
            pos, right = self._parse(tokens, pos)
            return pos, self._and([left, right]) if token == "&" else self._or([left, right])
        return pos + 1, self._leaf(*token)

    def _parse_negated(self, tokens: list[Any], pos: int) -> tuple[int, Node]:
        # '!' is pushed into leaves through the operator negation table (so that NULL
        # semantics follow the negated operator, as in Odoo); the rest stays NOT (...).
        token = tokens[pos]
        if isinstance(token, list | tuple) and not _is_operator(token):
            left, op, value = token
            op = str(op).lower()
            if op in NEGATION and not isinstance(left, int):
                return pos + 1, self._leaf(left, NEGATION[op], value)
        pos, child = self._parse(tokens, pos)
        return pos, self._not(child)

    # -- combinators ----------------------------------------------------------------------

    def _and(self, children: list[Node]) -> Node:
        if any(c.always is False for c in children):
            return FALSE
        children = [c for c in children if c.always is not True]
        if not children:
            return TRUE
        if len(children) == 1:
            return children[0]
        tests = [c.test for c in children]
        sets = [c.ids for c in children if c.ids is not None]
        ids = set.intersection(*sorted(sets, key=len)) if sets else None
        bounds = [c.id_lower for c in children if c.id_lower is not None]
        lower = max(bounds) if bounds else None
        return Node(lambda row: all(t(row) for t in tests), ids=ids, id_lower=lower)

    def _or(self, children: list[Node]) -> Node:
        if any(c.always is True for c in children):
            return TRUE
        children = [c for c in children if c.always is not False]
        if not children:
            return FALSE
        if len(children) == 1:
            return children[0]
        tests = [c.test for c in children]
        ids = None
        if all(c.ids is not None for c in children):
            ids = set().union(*(c.ids for c in children if c.ids is not None))
        return Node(lambda row: any(t(row) for t in tests), ids=ids)

    def _not(self, child: Node) -> Node:
        if child.always is not None:
            return FALSE if child.always else TRUE
        test = child.test
        return Node(lambda row: not test(row))

    # -- leaves ---------------------------------------------------------------------------

    def _leaf(self, left: Any, op: Any, value: Any) -> Node:
        leaf_repr = (left, op, value)
        if isinstance(left, int) and not isinstance(left, bool):
            if (left, op, value) == (1, "=", 1):
                return TRUE
            if (left, op, value) == (0, "=", 1):
                return FALSE
            raise invalid(f"Invalid leaf {leaf_repr!r}")
        if not isinstance(op, str) or not isinstance(left, str):
            raise invalid(f"Invalid leaf {leaf_repr!r}")
        op = op.lower()
        if op == "<>":
            op = "!="
        if op not in TERM_OPERATORS:
            raise invalid(f"Invalid leaf {leaf_repr!r}")
        table = self.table
        name, _, rest = left.partition(".")
        if name not in table.fields:
            raise invalid(f"Invalid field {table.name}.{name} in leaf {leaf_repr!r}")
        f = table.fields[name]
        if f.related:
            return self._leaf(f.related + ("." + rest if rest else ""), op, value)
        if rest:
            if f.type not in ("many2one", "one2many", "many2many"):
                raise invalid(f"Invalid field {table.name}.{left} in leaf {leaf_repr!r}")
            return self._leaf(name, "any", [(rest, op, value)])
        # normalize_leaf auto-corrections
        if op in ("in", "not in") and isinstance(value, bool):
            op = "=" if op == "in" else "!="
        elif op in ("=", "!=") and isinstance(value, list | tuple):
            op = "in" if op == "=" else "not in"
        if op == "=?":
            if value is False or value is None:
                return TRUE
            op = "="
        if f.compute and name != "id":
            if name not in SEARCHABLE_COMPUTES:
                return TRUE  # Odoo logs an error and ignores the leaf
            if name == "display_name":
                return self._display_name_leaf(op, value)
        if op in ("any", "not any"):
            return self._any(f, op, value)
        if op in ("child_of", "parent_of"):
            return self._hierarchy(f, op, value)
        if name == "id":
            return self._id_leaf(op, value)
        if f.type == "many2one":
            return self._many2one(f, op, value)
        if f.type in X2MANY:
            return self._x2many(f, op, value)
        return self._scalar(f, op, value)

    def _display_name_leaf(self, op: str, value: Any) -> Node:
        names = self.table.mdef.search_names()
        leaves = [self._leaf(n, op, value) for n in names if n in self.table.fields]
        return self._and(leaves) if op in NEGATIVE_TERM_OPERATORS else self._or(leaves)

    def _id_leaf(self, op: str, value: Any) -> Node:
        existing = self.table.rows
        if op in ("=", "in"):
            values = value if isinstance(value, list | tuple) else [value]
            wanted = {v for v in values if isinstance(v, int) and not isinstance(v, bool)}
            ids = {i for i in wanted if i in existing}
            return Node(lambda row: row["id"] in wanted, ids=ids)
        if op in ("!=", "not in"):
            values = value if isinstance(value, list | tuple) else [value]
            unwanted = {v for v in values if isinstance(v, int)}
            return Node(lambda row: row["id"] not in unwanted)
        if op in ("<", "<=", ">", ">="):
            if value is False or value is None:
                return FALSE
            bound = value
            cmp = _COMPARE[op]
            lower = (int(bound), op == ">=") if op in (">", ">=") and isinstance(bound, int) else None
            return Node(lambda row: cmp(row["id"], bound), id_lower=lower)
        return self._scalar(self.table.fields["id"], op, value)

    def _sub_search(self, model: str, domain: Any) -> set[int]:
        table = self.db.table(model)
        # Odoo runs relational sub-queries with active_test=False for many2one paths.
        node = Compiler(self.db, table, active_test=False).compile(domain)
        return set(run(node, table))

    def _any(self, f: Field, op: str, value: Any) -> Node:
        if f.type not in ("many2one", "one2many", "many2many"):
            raise invalid(f"Invalid leaf {(f.name, op, value)!r}: 'any' needs a relational field")
        assert f.relation
        if not isinstance(value, list | tuple):
            raise invalid(f"Invalid leaf {(f.name, op, value)!r}")
        matched = self._sub_search(f.relation, value)
        name = f.name
        if f.type == "many2one":
            if op == "any":
                ids = set().union(*(self.table.lookup(name, i) for i in matched)) if matched else set()
                return Node(lambda row: row.get(name) in matched, ids=ids)
            return Node(lambda row: row.get(name) is None or row.get(name) not in matched)
        if f.type == "one2many":
            assert f.inverse
            comodel = self.db.table(f.relation)
            parents = {comodel.rows[i].get(f.inverse) for i in matched} - {None}
            if op == "any":
                return Node(lambda row: row["id"] in parents, ids={p for p in parents if p in self.table.rows})
            return Node(lambda row: row["id"] not in parents)
        if op == "any":
            return Node(lambda row: any(i in matched for i in row.get(name, ())))
        return Node(lambda row: not any(i in matched for i in row.get(name, ())))

    def _resolve_ids(self, model: str, value: Any) -> list[int]:
        values = value if isinstance(value, list | tuple) else [value]
        ids: list[int] = []
        for v in values:
            if isinstance(v, str):
                ids += name_search_ids(self.db, model, v, "=", active_test=False)
            elif isinstance(v, int) and not isinstance(v, bool):
                ids.append(v)
        return ids

    def _hierarchy(self, f: Field, op: str, value: Any) -> Node:
        model = f.relation if f.relation else self.table.name
        comodel = self.db.table(model)
        parent = comodel.mdef.parent_name or "parent_id"
        if parent not in comodel.fields:
            raise invalid(f"Invalid leaf {(f.name, op, value)!r}: {model} has no parent field")
        if value is False or value is None:
            return FALSE
        start = [i for i in self._resolve_ids(model, value) if i in comodel.rows]
        related: set[int] = set()
        todo = list(start)
        while todo:  # walk children (child_of) or parents (parent_of), the records included
            rid = todo.pop()
            if rid in related:
                continue
            related.add(rid)
            if op == "child_of":
                todo.extend(comodel.lookup(parent, rid))
            else:
                up = comodel.rows[rid].get(parent)
                if up:
                    todo.append(up)
        if f.name == "id":
            return Node(lambda row: row["id"] in related, ids=related & set(self.table.rows))
        if f.type == "many2one":
            return self._many2one(f, "in", sorted(related))
        return self._x2many(f, "in", sorted(related))

    def _many2one(self, f: Field, op: str, value: Any) -> Node:
        name = f.name
        assert f.relation
        is_str_list = isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value)
        if isinstance(value, str) or is_str_list:
            # Compared to a name: resolved through the comodel's _name_search (active_test=False).
            if op in ("<", ">", "<=", ">="):
                op = "in"
            if isinstance(value, str) and op in ("in", "not in"):
                op = "=" if op == "in" else "!="
            elif isinstance(value, list | tuple) and op in ("=", "!="):
                op = "in" if op == "=" else "not in"
            ids = name_search_ids(self.db, f.relation, value, op, active_test=False)
            node = self._many2one(f, "in", ids)
            if op in NEGATIVE_TERM_OPERATORS:
                return self._or([node, self._many2one(f, "=", False)])
            return node
        if op in ("=", "in") and name in self.table.indexes:
            values = value if isinstance(value, list | tuple) else [value]
            keys = {None if v is False or v is None else v for v in values}
            matched = set().union(*(self.table.lookup(name, k) for k in keys)) if keys else set()
            return Node(lambda row: row.get(name) in keys, ids=matched)
        return self._scalar(f, op, value)

    def _x2many(self, f: Field, op: str, value: Any) -> Node:
        name = f.name
        assert f.relation
        if isinstance(value, str) or (isinstance(value, list | tuple) and value
                                      and all(isinstance(v, str) for v in value)):
            positive = op not in NEGATIVE_TERM_OPERATORS
            search_op = op if op in LIKE_OPS else ("=" if op in ("=", "!=") else "in")
            if isinstance(value, list | tuple) and search_op == "=":
                search_op = "in"
            ids = name_search_ids(self.db, f.relation, value, NEGATION.get(search_op, search_op)
                                  if not positive and search_op in NEGATION else search_op,
                                  active_test=False)
            node = self._contains(f, set(ids))
            return node if positive else self._not(node)
        if value is False or value is None:
            empty = self._contains(f, None)
            if op == "=":
                return self._not(empty)
            if op == "!=":
                return empty
        values = value if isinstance(value, list | tuple) else [value]
        wanted = {v for v in values if isinstance(v, int) and not isinstance(v, bool)}
        node = self._contains(f, wanted)
        if op in ("=", "in"):
            return node
        if op in ("!=", "not in"):
            return self._not(node)
        raise invalid(f"Invalid leaf {(name, op, value)!r} on a {f.type} field")

    def _contains(self, f: Field, wanted: set[int] | None) -> Node:
        """Records whose x2many holds one of `wanted` (None: holds anything)."""
        name = f.name
        if f.type == "one2many":
            assert f.relation and f.inverse
            comodel = self.db.table(f.relation)
            if wanted is None:
                parents = {k for k, v in comodel.indexes[f.inverse].items() if v and k is not None}
            else:
                parents = {comodel.rows[i].get(f.inverse) for i in wanted if i in comodel.rows} - {None}
            return Node(lambda row: row["id"] in parents, ids={p for p in parents if p in self.table.rows})
        if wanted is None:
            return Node(lambda row: bool(row.get(name)))
        return Node(lambda row: any(i in wanted for i in row.get(name, ())))

    def _scalar(self, f: Field, op: str, value: Any) -> Node:
        name = f.name
        empty = f.empty
        if f.type == "datetime":
            value = _expand_dates(op, value)
        if f.type == "boolean":
            return self._boolean(f, op, value)
        if op in ("=", "!="):
            if value is False or value is None:
                if op == "=":
                    if name in self.table.indexes:
                        return Node(lambda row: row.get(name) is None, ids=set(self.table.lookup(name, None)))
                    return Node(lambda row: row.get(name, empty) is None)
                return Node(lambda row: row.get(name, empty) is not None)
            if op == "=":
                if name in self.table.indexes:
                    return Node(lambda row: row.get(name) == value, ids=set(self.table.lookup(name, value)))
                return Node(lambda row: row.get(name, empty) == value)
            null_matches = bool(value)
            return Node(lambda row: null_matches if (v := row.get(name, empty)) is None else v != value)
        if op in ("<", ">", "<=", ">="):
            if value is False or value is None:
                return FALSE
            cmp = _COMPARE[op]

            def ordered(row: dict[str, Any]) -> bool:
                v = row.get(name, empty)
                if v is None:
                    return False
                try:
                    return bool(cmp(v, value))
                except TypeError:
                    return False
            return Node(ordered)
        if op in ("in", "not in"):
            values = list(value) if isinstance(value, list | tuple) else [value]
            if f.type == "datetime":
                values = [_expand_dates("=", v) for v in values]
            params = {v for v in values if v is not False and v is not None}
            check_null = len(params) < len(values)
            if op == "in":
                ids = None
                if name in self.table.indexes:
                    keys = params | ({None} if check_null else set())
                    ids = set().union(*(self.table.lookup(name, k) for k in keys)) if keys else set()
                return Node(lambda row: (v := row.get(name, empty)) in params or (check_null and v is None),
                            ids=ids)
            return Node(lambda row: (not check_null) if (v := row.get(name, empty)) is None
                        else (v not in params if params else True))
        if op in LIKE_OPS:
            return self._like(f, op, value)
        raise invalid(f"Invalid leaf {(name, op, value)!r}")

    def _boolean(self, f: Field, op: str, value: Any) -> Node:
        name = f.name
        if op in ("=", "!="):
            wanted = bool(value)
            if op == "!=":
                wanted = not wanted
            return Node(lambda row: bool(row.get(name, False)) is wanted)
        if op in ("in", "not in"):
            values = {bool(v) for v in (value if isinstance(value, list | tuple) else [value])}
            if op == "in":
                return Node(lambda row: bool(row.get(name, False)) in values)
            return Node(lambda row: bool(row.get(name, False)) not in values)
        return self._scalar(Field(name, "integer"), op, value)

    def _like(self, f: Field, op: str, value: Any) -> Node:
        name = f.name
        empty = f.empty
        pattern = "" if value is False or value is None else str(value)
        flags = re.IGNORECASE if "ilike" in op else 0
        if op in ("=like", "=ilike"):
            exact = re.compile(_sql_like_to_regex(pattern), flags | re.DOTALL)
            return Node(lambda row: (v := row.get(name, empty)) is not None and bool(exact.fullmatch(_text(v))))
        regex = re.compile(".*" + _sql_like_to_regex(pattern) + ".*", flags | re.DOTALL) if "%" in pattern or \
            "_" in pattern else None
        needle = pattern.lower() if flags else pattern
        negative = op.startswith("not")
        # SQL: (f [NOT] LIKE '%v%') OR f IS NULL, the NULL part added for an empty pattern or
        # a negative operator.
        null_matches = (not pattern) or negative

        def like(row: dict[str, Any]) -> bool:
            v = row.get(name, empty)
            if v is None:
                return null_matches
            s = _text(v)
            found = bool(regex.fullmatch(s)) if regex is not None else needle in (s.lower() if flags else s)
            return not found if negative else found
        return Node(like)


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _sql_like_to_regex(pattern: str) -> str:
    out = []
    for ch in pattern:
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
    return "".join(out)


def _expand_dates(op: str, value: Any) -> Any:
    """A date-only value on a datetime field: the end of the day for > and <=, else its start."""
    if isinstance(value, str) and len(value) == 10 and value[4] == "-":
        return value + (" 23:59:59" if op in (">", "<=") else " 00:00:00")
    return value


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
}


def _mentions_active(tokens: Iterable[Any]) -> bool:
    return any(isinstance(t, list | tuple) and isinstance(t[0], str) and t[0].split(".")[0] == "active"
               for t in tokens)


def run(node: Node, table: Table, *, order_by_id: bool = True, stop_after: int | None = None,
        descending: bool = False) -> list[int]:
    """Matching ids in id order (or reverse), stopping early after `stop_after` matches."""
    if node.always is False:
        return []
    if node.ids is not None:
        base: Iterable[int] = sorted(node.ids, reverse=descending)
        if node.id_lower is not None:
            n, inclusive = node.id_lower
            base = [i for i in base if i > n or (inclusive and i == n)]
    elif node.id_lower is not None:
        n, inclusive = node.id_lower
        base = table.ids_after(n, inclusive)
        if descending:
            base = list(reversed(base))
    else:
        base = reversed(table.ids) if descending else table.ids
    rows = table.rows
    test = node.test
    out: list[int] = []
    if node.always is True:
        for rid in base:
            out.append(rid)
            if stop_after is not None and len(out) >= stop_after:
                break
        return out
    for rid in base:
        if test(rows[rid]):
            out.append(rid)
            if stop_after is not None and len(out) >= stop_after:
                break
    return out


def name_search_ids(db: Database, model: str, name: Any, operator: str = "ilike",
                    domain: Any = None, limit: int | None = None, active_test: bool = True) -> list[int]:
    """`_name_search`: the model's `_rec_names_search` fields compared to `name`."""
    from siteops.sim.odoo.ordering import search  # local: ordering imports this module

    table = db.table(model)
    fields = [n for n in table.mdef.search_names() if n in table.fields]
    if operator in NEGATIVE_TERM_OPERATORS:
        name_domain: list[Any] = ["&"] * (len(fields) - 1) + [(n, operator, name) for n in fields]
    else:
        name_domain = ["|"] * (len(fields) - 1) + [(n, operator, name) for n in fields]
    if operator in ("ilike", "like") and not name:
        name_domain = []
    full = list(domain or []) + name_domain
    return search(db, model, full, {"active_test": active_test}, limit=limit)
