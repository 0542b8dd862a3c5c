"""The ORM methods callable over RPC (odoo.md §2.5, §2.6), with their real signatures.

`Env.call(model, method, args, kwargs)` is what `object.execute_kw` and the JSON-2 API
end up in. A wrong keyword raises the same TypeError Odoo would, because the methods
here have the same Python signatures.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from siteops.sim.odoo import actions, webhooks
from siteops.sim.odoo.domain import name_search_ids
from siteops.sim.odoo.models import X2MANY, Field
from siteops.sim.odoo.ordering import count, search
from siteops.sim.odoo.store import (
    AccessError,
    BadArguments,
    BuiltinError,
    Database,
    MissingError,
    Table,
    UnknownMethod,
    ValidationError,
    invalid,
    now_str,
)

# Record methods take the ids as their first positional argument (odoo.api.call_kw).
RECORD_METHODS = frozenset({
    "read", "write", "unlink", "message_post", "activity_schedule", "action_feedback", "exists",
    "action_confirm", "action_assign", "button_validate", "action_cancel", "do_unreserve",
    "button_confirm", "button_approve", "button_cancel", "action_apply_inventory", "copy",
})


@dataclass(frozen=True)
class Recordset:
    """What an ORM method returned as records; each protocol and version serialises it its own way.

    See `rpc_result`: that is where Odoo 19 (JSON-2, and `/jsonrpc` from 18) differs from 17.
    """

    model: str
    ids: tuple[int, ...]


def rpc_result(result: Any, *, method: str, args: list[Any], kwargs: dict[str, Any], protocol: str,
               version: int) -> Any:
    """The JSON value Odoo sends for `result` (odoo.md §9 item 1, verified in Odoo's source).

    * JSON-2 (19, `addons/rpc/controllers/json2.py`): any recordset becomes `result.ids`,
      with no special case: `create` with one dict gives `[id]`, `message_post` `[id]`.
    * `/jsonrpc` from 18 (`odoo/service/model.py` `call_kw`): `create` gives `result.id`
      when called with one dict (else `.ids`); every other recordset becomes `.ids`.
    * `/jsonrpc` on 16/17: `api.returns` downgrades — `create(dict)`, `copy` and
      `message_post` give an int; a method without `api.returns` (`activity_schedule`)
      goes through `json_default`, that is `str(recordset)`.
    """
    if not isinstance(result, Recordset):
        return result
    ids = list(result.ids)
    if protocol == "json2":
        return ids
    single = method == "create" and isinstance(args[0] if args else kwargs.get("vals_list"), dict)
    if version >= 18:
        return ids[0] if single and ids else ids
    if method in ("create", "copy", "message_post") and (single or method != "create"):
        return ids[0] if ids else False
    if method == "create":
        return ids
    return f"{result.model}({''.join(f'{i},' for i in ids)})"


def _as_ids(ids: Any) -> list[int]:
    if isinstance(ids, bool) or ids is None:
        return []
    if isinstance(ids, int):
        return [ids]
    if isinstance(ids, list | tuple) and all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        return list(ids)
    raise BuiltinError("TypeError", f"Invalid ids {ids!r}")


class Env:
    """One RPC call's environment: the database, the user and the context."""

    def __init__(self, db: Database, uid: int, context: dict[str, Any] | None = None) -> None:
        self.db = db
        self.uid = uid
        self.context = dict(context or {})

    # -- dispatch -------------------------------------------------------------------------

    def call(self, model: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """Run `model.method`; a recordset comes back as a `Recordset` (see `rpc_result`)."""
        if method.startswith("_") or method == "init":
            raise AccessError(f"Private methods (such as {method}) cannot be called remotely.")
        table = self.db.table(model)
        func = self.method(table, method)
        kwargs = dict(kwargs)
        context = kwargs.pop("context", None)
        if isinstance(context, dict):
            self.context.update(context)
        if method in RECORD_METHODS:
            if not args:
                raise BuiltinError("IndexError", "tuple index out of range")
            call_args = [table, _as_ids(args[0]), *args[1:]]
        else:
            call_args = [table, *args]
        try:
            # Bind first, so a call that does not fit the signature is told apart from a
            # TypeError raised inside the method (JSON-2 answers the first 422, the second 500).
            inspect.signature(func).bind(*call_args, **kwargs)
        except TypeError as exc:
            raise BadArguments(str(exc)) from None
        with self.db.lock:
            try:
                return func(*call_args, **kwargs)
            except TypeError as exc:
                raise BuiltinError("TypeError", str(exc)) from None

    def method(self, table: Table, name: str) -> Callable[..., Any]:
        func = getattr(self, "m_" + name, None)
        specific = actions.ACTIONS.get((table.name, name))
        if specific is not None:
            return functools.partial(specific, self)  # keeps the signature, for binding
        if name in ("message_post", "activity_schedule") and not table.mdef.mail_thread:
            func = None
        if name == "context_get" and table.name != "res.users":
            func = None
        if name == "check_object_reference" and table.name != "ir.model.data":
            func = None
        if func is None:
            raise UnknownMethod(table.name, name)
        return func

    # -- value conversion -----------------------------------------------------------------

    def to_read(self, table: Table, row: dict[str, Any], f: Field, load: Any) -> Any:
        v = self.db.value(table, row, f.name)
        if f.type == "many2one":
            if v is None or v is False:
                return False
            if load == "_classic_read":
                assert f.relation
                return [v, self.db.display_name_of(f.relation, v)]
            return v
        if f.type in X2MANY:
            return list(v or [])
        if f.type == "boolean":
            return bool(v)
        if f.type == "many2one_reference":
            return v or False
        if v is None:
            return False
        return v

    def check_fields(self, table: Table, names: Any) -> list[Field]:
        if not names:
            return [f for f in table.fields.values()]
        if isinstance(names, str):
            names = [names]
        out = []
        for name in names:
            f = table.fields.get(name)
            if f is None:
                raise invalid(f"Invalid field '{name}' on model '{table.name}'")
            out.append(f)
        return out

    def read_rows(self, table: Table, ids: list[int], fields: Any, load: Any = "_classic_read") -> list[dict]:
        flist = [f for f in self.check_fields(table, fields) if f.name != "id"]
        out = []
        for rid in ids:
            row = table.rows.get(rid)
            if row is None:
                continue  # Odoo's read silently drops missing ids
            rec: dict[str, Any] = {"id": rid}
            for f in flist:
                rec[f.name] = self.to_read(table, row, f, load)
            out.append(rec)
        return out

    def to_store(self, table: Table, name: str, value: Any) -> Any:
        f = table.fields.get(name)
        if f is None:
            raise invalid(f"Invalid field '{name}' on model '{table.name}'")
        if f.type == "datetime" and isinstance(value, str):
            value = value.replace("T", " ")[:19]
            if len(value) == 10:
                value += " 00:00:00"
        if f.type == "date" and isinstance(value, str):
            value = value[:10]
        if f.type == "many2one" and isinstance(value, list | tuple):
            value = value[0] if value else None  # [id, name] pairs are accepted
        if f.type in ("float", "monetary") and isinstance(value, int | float) and not isinstance(value, bool):
            value = float(value)
        if value is False and f.type != "boolean":
            return None
        return value

    # -- CRUD -----------------------------------------------------------------------------

    def _split_values(self, table: Table, vals: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        if not isinstance(vals, dict):
            raise BuiltinError("TypeError", f"vals must be a dict, got {type(vals).__name__}")
        plain: dict[str, Any] = {}
        x2many: dict[str, Any] = {}
        for name, value in vals.items():
            f = table.fields.get(name)
            if f is None:
                raise invalid(f"Invalid field '{name}' on model '{table.name}'")
            if name == "id" or f.compute or f.related:
                continue
            if f.type in X2MANY:
                x2many[name] = value
            else:
                plain[name] = self.to_store(table, name, value)
        return plain, x2many

    def _apply_x2many(self, table: Table, rid: int, commands: dict[str, Any]) -> None:
        for name, cmds in commands.items():
            f = table.fields[name]
            assert f.relation
            current = list(table.rows[rid].get(name, ())) if f.type == "many2many" else []
            for cmd in cmds or []:
                if isinstance(cmd, int):  # a bare list of ids means "set"
                    current = list(cmds)
                    break
                code = cmd[0]
                if code == 0 and f.type == "one2many":
                    assert f.inverse
                    self.create_one(self.db.table(f.relation), {**cmd[2], f.inverse: rid})
                elif code == 0:
                    current.append(self.create_one(self.db.table(f.relation), dict(cmd[2])))
                elif code == 1:
                    self.m_write(self.db.table(f.relation), [cmd[1]], cmd[2])
                elif code in (2, 3) and f.type == "one2many":
                    if code == 2:
                        self.m_unlink(self.db.table(f.relation), [cmd[1]])
                    else:
                        self.db.table(f.relation).update(cmd[1], {f.inverse: None})  # type: ignore[dict-item]
                elif code in (2, 3):
                    current = [i for i in current if i != cmd[1]]
                elif code == 4:
                    if f.type == "one2many":
                        self.db.table(f.relation).update(cmd[1], {f.inverse: rid})  # type: ignore[dict-item]
                    elif cmd[1] not in current:
                        current.append(cmd[1])
                elif code == 5:
                    current = []
                elif code == 6:
                    current = list(cmd[2])
            if f.type == "many2many":
                table.update(rid, {name: tuple(current)})

    def create_one(self, table: Table, vals: dict[str, Any]) -> int:
        plain, x2many = self._split_values(table, vals)
        for f in table.fields.values():
            if f.name not in plain and f.default is not None:
                plain[f.name] = f.default
        actions.before_create(self, table, plain)
        for f in table.fields.values():
            if f.required and f.store and not f.compute and plain.get(f.name) in (None, ""):
                raise ValidationError(
                    f"The operation cannot be completed: Missing required value for the field "
                    f"'{f.string}' ({f.name}).\nModel: {table.mdef.description} ({table.name}), "
                    f"Field: {f.string} ({f.name})")
        rid = self.db.insert(table.name, plain, uid=self.uid)
        self._apply_x2many(table, rid, x2many)
        actions.after_create(self, table, rid)
        webhooks.fire(self, table, rid, "create")
        return rid

    def m_create(self, table: Table, vals_list: Any) -> Recordset:
        if isinstance(vals_list, dict):
            return Recordset(table.name, (self.create_one(table, vals_list),))
        if isinstance(vals_list, list):
            return Recordset(table.name, tuple(self.create_one(table, vals) for vals in vals_list))
        raise BuiltinError("TypeError", "create() expects a dict or a list of dicts")

    def _existing(self, table: Table, ids: list[int]) -> None:
        missing = [i for i in ids if i not in table.rows]
        if missing:
            raise MissingError(
                "Record does not exist or has been deleted.\n"
                f"(Record: {table.name}({', '.join(map(str, missing))},), User: {self.uid})")

    def m_write(self, table: Table, ids: list[int], vals: dict[str, Any]) -> bool:
        self._existing(table, ids)
        plain, x2many = self._split_values(table, vals)
        plain.update(write_date=now_str(), write_uid=self.uid)
        for rid in ids:
            actions.before_write(self, table, rid, plain)
            before = webhooks.snapshot(self, table, rid)
            table.update(rid, plain)
            self._apply_x2many(table, rid, x2many)
            webhooks.fire(self, table, rid, "write", before)
        return True

    def m_unlink(self, table: Table, ids: list[int]) -> bool:
        self._existing(table, ids)
        for rid in ids:
            table.delete(rid)
        return True

    def m_exists(self, table: Table, ids: list[int]) -> list[int]:
        return [i for i in ids if i in table.rows]

    def m_read(self, table: Table, ids: list[int], fields: Any = None, load: Any = "_classic_read") -> list[dict]:
        return self.read_rows(table, ids, fields, load)

    def m_search(self, table: Table, domain: Any, offset: int = 0, limit: int | None = None,
                 order: str | None = None) -> list[int]:
        return search(self.db, table.name, domain, self.context, offset=offset, limit=limit, order=order)

    def m_search_count(self, table: Table, domain: Any, limit: int | None = None) -> int:
        return count(self.db, table.name, domain, self.context, limit=limit)

    def m_search_read(self, table: Table, domain: Any = None, fields: Any = None, offset: int = 0,
                      limit: int | None = None, order: str | None = None,
                      load: Any = "_classic_read") -> list[dict]:
        self.check_fields(table, fields)  # validate before searching, like Odoo
        ids = search(self.db, table.name, domain or [], self.context, offset=offset, limit=limit, order=order)
        return self.read_rows(table, ids, fields, load)

    def m_fields_get(self, table: Table, allfields: Any = None, attributes: Any = None) -> dict[str, Any]:
        out = {}
        for name, f in table.fields.items():
            if allfields and name not in allfields:
                continue
            desc = f.describe()
            if attributes:
                desc = {k: v for k, v in desc.items() if k in attributes}
            out[name] = desc
        return out

    def m_default_get(self, table: Table, fields_list: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in fields_list or []:
            f = table.fields.get(name)
            if f is None:
                continue
            if f.default is not None:
                out[name] = f.default
            elif name == "company_id" and f.relation == "res.company":
                out[name] = 1
            elif name == "currency_id" and table.name == "purchase.order":
                out[name] = self.db.tables["res.company"].rows.get(1, {}).get("currency_id", False)
            elif name == "user_id" and f.relation == "res.users" and table.name in (
                    "stock.picking", "purchase.order", "sale.order", "mail.activity"):
                out[name] = self.uid
        return out

    def m_name_search(self, table: Table, name: str = "", args: Any = None, operator: str = "ilike",
                      limit: int = 100, domain: Any = None) -> list[list[Any]]:
        # 17 calls the filter `args`; 18 renamed it `domain`.
        if self.db.version <= 17 and domain is not None:
            raise BuiltinError("TypeError", "name_search() got an unexpected keyword argument 'domain'")
        if self.db.version >= 18 and args is not None:
            raise BuiltinError("TypeError", "name_search() got an unexpected keyword argument 'args'")
        ids = name_search_ids(self.db, table.name, name, operator, domain if domain is not None else args,
                              limit=limit, active_test=self.context.get("active_test", True) is not False)
        return [[i, self.db.display_name(table, table.rows[i])] for i in ids]

    def m_context_get(self, table: Table) -> dict[str, Any]:
        user = table.rows.get(self.uid, {})
        return {"lang": user.get("lang", "en_US"), "tz": user.get("tz", "Europe/Brussels"), "uid": self.uid}

    def m_check_object_reference(self, table: Table, module: str, xml_id: str,
                                 raise_on_access_error: bool = False) -> list[Any]:
        ids = table.lookup("name", xml_id) & table.lookup("module", module)
        for rid in ids:
            row = table.rows[rid]
            return [row["model"], row["res_id"]]
        raise invalid(f"External ID not found in the system: {module}.{xml_id}")

    def m_read_group(self, table: Table, domain: Any, fields: Any, groupby: Any, offset: int = 0,
                     limit: int | None = None, orderby: Any = False, lazy: bool = True) -> list[dict]:
        gb = groupby if isinstance(groupby, str) else groupby[0]
        gname = gb.split(":")[0]
        gfield = self.db.field(table.name, gname)
        sums = [s.split(":")[0] for s in fields if s.split(":")[0] in table.fields
                and table.fields[s.split(":")[0]].type in ("float", "integer", "monetary")
                and s.split(":")[0] != gname]
        groups: dict[Any, list[int]] = {}
        for rid in search(self.db, table.name, domain, self.context):
            groups.setdefault(table.rows[rid].get(gname), []).append(rid)
        out = []
        for key, ids in sorted(groups.items(), key=lambda kv: (kv[0] is None, str(kv[0]))):
            value: Any = key if key is not None else False
            if gfield.type == "many2one" and key is not None:
                assert gfield.relation
                value = [key, self.db.display_name_of(gfield.relation, key)]
            entry: dict[str, Any] = {gname: value, f"{gname}_count": len(ids),
                                     "__domain": [(gname, "=", key if key is not None else False), *domain]}
            for s in sums:
                entry[s] = sum(table.rows[i].get(s, 0.0) for i in ids)
            out.append(entry)
        return out[offset:][: limit or None]

    # -- mail.thread ----------------------------------------------------------------------

    def m_message_post(self, table: Table, ids: list[int], *, body: str = "", subject: str | None = None,
                       message_type: str = "notification", subtype_xmlid: str | None = None,
                       partner_ids: Any = None, attachments: Any = None, attachment_ids: Any = None,
                       body_is_html: bool = False, **kwargs: Any) -> Recordset:
        if len(ids) != 1:
            raise invalid(f"Expected singleton: {table.name}({', '.join(map(str, ids))},)")
        if "model" in kwargs or "res_id" in kwargs:
            raise invalid("message_post doesn't support model and res_id parameters anymore. "
                          "Please call message_post on record.")
        if "subtype" in kwargs:
            raise invalid("message_post doesn't support subtype parameter anymore. "
                          "Please give a valid subtype_id or subtype_xmlid value instead.")
        self._existing(table, ids)
        user = self.db.tables["res.users"].rows.get(self.uid, {})
        return Recordset("mail.message", (self.create_one(self.db.table("mail.message"), {
            "body": body, "subject": subject or False, "model": table.name, "res_id": ids[0],
            "message_type": message_type, "author_id": user.get("partner_id") or False,
            "date": now_str(), "record_name": self.db.display_name(table, table.rows[ids[0]]),
            "is_internal": subtype_xmlid == "mail.mt_note",
        }),))

    def m_activity_schedule(self, table: Table, ids: list[int], act_type_xmlid: str = "",
                            date_deadline: str | None = None, summary: str = "", note: str = "",
                            **act_values: Any) -> Recordset:
        self._existing(table, ids)
        imd = self.db.table("ir.model.data")
        type_id = act_values.pop("activity_type_id", False)
        if act_type_xmlid and not type_id:
            module, _, name = act_type_xmlid.partition(".")
            _, type_id = self.m_check_object_reference(imd, module, name)
        model_ids = search(self.db, "ir.model", [("model", "=", table.name)])
        created = []
        for rid in ids:
            created.append(self.create_one(self.db.table("mail.activity"), {
                "res_model_id": model_ids[0], "res_id": rid, "activity_type_id": type_id,
                "date_deadline": date_deadline or self.db.today(), "summary": summary, "note": note,
                **act_values,
            }))
        return Recordset("mail.activity", tuple(created))
