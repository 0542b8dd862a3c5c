"""In-memory records of the simulated Odoo, with the indexes that keep big searches fast.

Rows are sparse dicts (a missing key means the field's empty value), so 200,000
pickings fit in a few hundred MB. Every stored many2one and every `index=True` field has
a value -> ids index; one2many values are derived from the comodel's many2one index,
never stored twice. One lock serialises calls, like one database transaction each.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from siteops.sim.odoo.models import Field, ModelDef, adapt_values, build_models, version_name

# The `http_status` Odoo 19 gives its exceptions (`odoo/exceptions.py`; JSON-2 answers with it).
JSON2_STATUS = {
    "odoo.exceptions.UserError": 422, "odoo.exceptions.ValidationError": 422,
    "odoo.exceptions.AccessError": 403, "odoo.exceptions.AccessDenied": 403,
    "odoo.exceptions.MissingError": 404, "odoo.exceptions.LockError": 409,
}


class OdooError(Exception):
    """An error the server reports in the JSON-RPC error envelope, as `data.name`."""

    name = "odoo.exceptions.UserError"
    http_status = 422  # for the JSON-2 API

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UserError(OdooError):
    name = "odoo.exceptions.UserError"


class ValidationError(OdooError):
    name = "odoo.exceptions.ValidationError"


class AccessError(OdooError):
    name = "odoo.exceptions.AccessError"
    http_status = 403


class AccessDenied(OdooError):
    name = "odoo.exceptions.AccessDenied"
    http_status = 403  # a UserError in 19: its http_status, not 401 (that is werkzeug's Unauthorized)

    def __init__(self, message: str = "Access Denied") -> None:
        super().__init__(message)


class MissingError(OdooError):
    name = "odoo.exceptions.MissingError"
    http_status = 404


class BuiltinError(OdooError):
    """A plain Python exception inside Odoo (`builtins.ValueError` and friends).

    JSON-2 answers these 500: `Json2Dispatcher.handle_error` gives a status only to the
    `UserError` family and to werkzeug's HTTP exceptions.
    """

    def __init__(self, kind: str, message: str, http_status: int = 500) -> None:
        super().__init__(message)
        self.name = f"builtins.{kind}"
        self.http_status = http_status


class BadArguments(BuiltinError):
    """The call does not fit the method's signature (a missing or unexpected argument).

    JSON-RPC reports the TypeError; JSON-2 binds the signature first and answers 422
    `werkzeug.exceptions.UnprocessableEntity`.
    """

    def __init__(self, message: str) -> None:
        super().__init__("TypeError", message, http_status=422)


class UnknownMethod(BuiltinError):
    """No such public method: JSON-RPC's AttributeError, JSON-2's 404 NotFound."""

    def __init__(self, model: str, method: str) -> None:
        super().__init__("AttributeError", f"type object '{model}' has no attribute '{method}'", http_status=404)
        self.model = model
        self.method = method


def invalid(message: str) -> BuiltinError:
    return BuiltinError("ValueError", message)


def now_str() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


class Table:
    """The rows of one model, sorted ids, and value -> ids indexes."""

    def __init__(self, mdef: ModelDef) -> None:
        self.mdef = mdef
        self.name = mdef.name
        self.fields = mdef.fields
        self.rows: dict[int, dict[str, Any]] = {}
        self.ids: list[int] = []  # ascending; ids are handed out in increasing order
        self.next_id = 1
        self.indexed = [
            f.name for f in mdef.fields.values()
            if f.store and not f.related and not f.compute and (f.type == "many2one" or f.index)
        ]
        self.indexes: dict[str, defaultdict[Any, set[int]]] = {n: defaultdict(set) for n in self.indexed}
        self.defaults = {f.name: f.default for f in mdef.fields.values() if f.default is not None}

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, rid: int) -> dict[str, Any] | None:
        return self.rows.get(rid)

    def insert(self, row: dict[str, Any]) -> int:
        rid = row.get("id") or self.next_id
        self.next_id = max(self.next_id, rid + 1)
        row["id"] = rid
        self.rows[rid] = row
        if not self.ids or rid > self.ids[-1]:
            self.ids.append(rid)
        else:
            bisect.insort(self.ids, rid)
        for name in self.indexed:
            self.indexes[name][row.get(name)].add(rid)
        return rid

    def update(self, rid: int, values: dict[str, Any]) -> None:
        row = self.rows[rid]
        for name, value in values.items():
            if value is False and self.fields[name].type != "boolean":
                value = None
            if name in self.indexes:
                old = row.get(name)
                if old != value:
                    self.indexes[name][old].discard(rid)
                    self.indexes[name][value].add(rid)
            if value is None or (value is False and self.fields[name].type == "boolean"):
                row.pop(name, None)
            else:
                row[name] = value

    def delete(self, rid: int) -> None:
        row = self.rows.pop(rid)
        pos = bisect.bisect_left(self.ids, rid)
        del self.ids[pos]
        for name in self.indexed:
            self.indexes[name][row.get(name)].discard(rid)

    def lookup(self, name: str, value: Any) -> set[int]:
        """Ids whose indexed field `name` equals `value` (None = empty)."""
        return self.indexes[name].get(value, set())

    def ids_after(self, lower: int, inclusive: bool = False) -> list[int]:
        pos = (bisect.bisect_left if inclusive else bisect.bisect_right)(self.ids, lower)
        return self.ids[pos:]

    def ids_before(self, upper: int, inclusive: bool = False) -> list[int]:
        pos = (bisect.bisect_right if inclusive else bisect.bisect_left)(self.ids, upper)
        return self.ids[:pos]


SUPPORTED_VERSIONS = (16, 17, 18, 19)


class Database:
    """One simulated Odoo database: models of a version, tables, users and credentials."""

    def __init__(self, name: str = "demo", version: int = 17, now: datetime | None = None) -> None:
        if version not in SUPPORTED_VERSIONS:
            raise ValueError(f"unsupported Odoo version {version} (16, 17, 18 or 19)")
        self.name = name
        self.version = version
        self.models = build_models(version)
        self.tables = {name: Table(mdef) for name, mdef in self.models.items()}
        self.lock = threading.RLock()
        self.passwords: dict[int, str] = {}  # uid -> password
        self.api_keys: dict[str, int] = {}  # api key -> uid
        self.now = now  # a frozen clock for "today" in computes; None means the real clock
        self.sequences: dict[str, int] = {}  # prefix -> last number handed out

    def next_name(self, prefix: str, padding: int = 5) -> str:
        """The next `ir.sequence` style name, e.g. `CW/OUT/00012`."""
        n = self.sequences.get(prefix, 0) + 1
        self.sequences[prefix] = n
        return f"{prefix}{n:0{padding}d}"

    # -- access ---------------------------------------------------------------------------

    def table(self, model: str) -> Table:
        try:
            return self.tables[model]
        except KeyError:
            raise UserError(f"Object {model} doesn't exist") from None

    def field(self, model: str, name: str) -> Field:
        try:
            return self.tables[model].fields[name]
        except KeyError:
            raise invalid(f"Invalid field '{name}' on model '{model}'") from None

    def adapt(self, model: str, values: dict[str, Any]) -> dict[str, Any]:
        """Values written with 17's field names, as this version names (or lacks) them."""
        return adapt_values(self.version, model, values)

    def fname(self, model: str, name: str) -> str:
        """This version's name of a field 17 calls `name` (e.g. 16's `quantity_done`)."""
        return version_name(self.version, model, name) or name

    def today(self) -> str:
        return (self.now or datetime.now(UTC)).strftime("%Y-%m-%d")

    def value(self, table: Table, row: dict[str, Any], name: str) -> Any:
        """The raw value of a field: stored, related (followed) or computed."""
        f = table.fields[name]
        if name == "id":
            return row["id"]
        if f.related:
            return self.follow(table, row, f.related)
        if f.compute:
            return f.compute(self, table, row)
        if f.type == "one2many":
            assert f.relation and f.inverse
            return sorted(self.tables[f.relation].lookup(f.inverse, row["id"]))
        return row.get(name, f.empty)

    def follow(self, table: Table, row: dict[str, Any] | None, path: str) -> Any:
        for i, part in enumerate(path.split(".")):
            if row is None:
                return None
            f = table.fields[part]
            val = self.value(table, row, part)
            if i == path.count("."):
                return val
            assert f.relation
            table = self.tables[f.relation]
            row = table.get(val) if val else None
        return None

    # -- display names --------------------------------------------------------------------

    def display_name(self, table: Table, row: dict[str, Any]) -> Any:
        model = table.name
        if model == "product.product":
            code = row.get("default_code")
            return f"[{code}] {row.get('name')}" if code else row.get("name", False)
        if model == "stock.picking.type":
            wh = self.tables["stock.warehouse"].get(row.get("warehouse_id") or 0)
            return f"{wh['name']}: {row.get('name')}" if wh else row.get("name", False)
        if model == "stock.quant":
            prod = self.tables["product.product"].get(row.get("product_id") or 0)
            return self.display_name(self.tables["product.product"], prod) if prod else False
        if model == "ir.model.data":
            return f"{row.get('module')}.{row.get('name')}"
        rec_name = table.mdef.rec_name
        if rec_name in table.fields and not table.fields[rec_name].compute:
            value = row.get(rec_name)
            if value is not None:
                return value
        return row.get("name") or f"{model},{row['id']}"

    def display_name_of(self, model: str | None, rid: int | None) -> Any:
        if not model or not rid or model not in self.tables:
            return False
        table = self.tables[model]
        row = table.get(rid)
        return self.display_name(table, row) if row else False

    # -- stock computes -------------------------------------------------------------------

    def qty_available(self, product_id: int) -> float:
        quants = self.tables["stock.quant"]
        locations = self.tables["stock.location"]
        total = 0.0
        for qid in quants.lookup("product_id", product_id):
            q = quants.rows[qid]
            loc = locations.get(q.get("location_id") or 0)
            if loc and loc.get("usage", "internal") == "internal":
                total += q.get("quantity", 0.0)
        return total

    # -- writes ---------------------------------------------------------------------------

    def insert(self, model: str, values: dict[str, Any], *, uid: int = 1, apply_defaults: bool = True) -> int:
        """Insert a row without business logic (the generator and the ORM `create` use it)."""
        table = self.table(model)
        unknown = [name for name in values if name not in table.fields]
        if unknown:
            raise invalid(f"Invalid field {unknown[0]!r} on model {model!r}")
        row: dict[str, Any] = dict(table.defaults) if apply_defaults else {}
        for name, value in values.items():
            if value is None or value is False:
                row.pop(name, None)  # sparse rows: absent means empty (False for booleans)
                continue
            row[name] = value
        stamp = values.get("create_date") or now_str()
        row.setdefault("create_date", stamp)
        # Odoo stamps write_date with its clock at the write: never in the future, even
        # when the data set backdates or post-dates create_date for realism.
        row.setdefault("write_date", min(stamp, now_str()))
        row.setdefault("create_uid", uid)
        row.setdefault("write_uid", uid)
        return table.insert(row)

    def ids_of(self, model: str) -> Iterable[int]:
        return self.table(model).ids
