"""The Odoo client tasks use: one per worker process, classified errors, metrics, no browse().

    client = get_client("NORTH")          # lazily built after fork, keyed on os.getpid()
    for row in client.iter_search_read("stock.picking", domain, ["name", "partner_id"]):
        ...

Every call has a timeout and lands in `siteops_connector_calls_total` and
`siteops_connector_call_duration_seconds`; nothing but `siteops.connectors.errors`
exceptions leaves this module.

Odoo 16 to 19, one vocabulary. Callers write field names as Odoo 17+ does (the
*logical* names); `FIELD_NAMES` is the version map, and `search_read`, `read`,
`search`, `search_count`, `write` and `create` translate fields, domain leaves and
values to the server's names and hand rows back under the logical names (so
`stock.move.quantity` reads `quantity_done` on 16 and arrives as `quantity`). Raw
`call()` does not translate: use `field()` there. Results are normalised across
protocols too: Odoo 19's JSON-2 returns every recordset as a list of ids (`create` with
one dict gives `[id]`, `message_post` `[id]`), `/jsonrpc` from 18 does the same except for
`create`, 16/17 downgrade to an int; `create`, `post_note`, `schedule_activity` and
`ensure_created` return an int id whatever the server sent, or raise `PermanentError`.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

from siteops.connectors.errors import AuthError, ConnectorError, PermanentError
from siteops.connectors.odoo.config import OdooConfig
from siteops.connectors.odoo.errors import SYSTEM, classify
from siteops.connectors.odoo.metrics import CALL_DURATION, CALLS
from siteops.connectors.odoo.transport import Transport, major, open_transport

# Logical field name -> the real name from a given major version on (odoo.md §3, §5 item 8, §9 item 4).
FIELD_NAMES: dict[tuple[str, str], list[tuple[int, str]]] = {
    ("stock.move", "quantity"): [(0, "quantity_done"), (17, "quantity")],
    ("stock.move.line", "quantity"): [(0, "qty_done"), (17, "quantity")],
    ("purchase.order", "notes"): [(0, "notes"), (19, "note")],
    ("purchase.order.line", "product_uom"): [(0, "product_uom"), (19, "product_uom_id")],
    ("purchase.order.line", "taxes_id"): [(0, "taxes_id"), (19, "tax_ids")],
}
XMLID_MODULE = "siteops"
_XMLID_BAD = re.compile(r"[^a-z0-9_]+")


def _outcome(exc: ConnectorError) -> str:
    from siteops.connectors.errors import RateLimited, RetryableError

    if isinstance(exc, AuthError):
        return "auth"
    if isinstance(exc, RateLimited):
        return "rate_limited"
    if isinstance(exc, RetryableError):
        return "retryable"
    return "permanent"


class _Connection:
    """The per-process transport, opened on first use and re-opened after an auth failure."""

    def __init__(self, config: OdooConfig | None) -> None:
        self._config = config
        self._transport: Transport | None = None
        self._lock = threading.Lock()

    def config(self) -> OdooConfig:
        return self._config or OdooConfig.from_env()

    def get(self) -> Transport:
        with self._lock:
            if self._transport is None:
                self._transport = open_transport(self.config())
            return self._transport

    def reset(self) -> None:
        with self._lock:
            if self._transport is not None:
                # Closing a broken transport must not mask the error that made us close it.
                with contextlib.suppress(Exception):
                    self._transport.close()
            self._transport = None


class OdooClient:
    def __init__(self, config: OdooConfig | None = None, *, site: str = "",
                 _connection: _Connection | None = None) -> None:
        self._conn = _connection or _Connection(config)
        self.site = site
        self._model_ids: dict[str, int] = {}

    def for_site(self, site: str) -> OdooClient:
        """The same connection, with calls counted under `site`."""
        client = OdooClient(site=site, _connection=self._conn)
        client._model_ids = self._model_ids
        return client

    # -- the one call path ----------------------------------------------------------------

    def call(self, model: str, method: str, ids: Sequence[int] | None = None, *, timeout: float | None = None,
             **params: Any) -> Any:
        """Call `model.method` with named parameters; record methods get `ids`."""
        operation = f"{model}.{method}"
        start = time.perf_counter()
        outcome = "ok"
        try:
            return self._call_with_relogin(model, method, ids, params, timeout, operation)
        except ConnectorError as exc:
            outcome = _outcome(exc)
            raise
        finally:
            CALLS.labels(SYSTEM, self.site, operation, outcome).inc()
            CALL_DURATION.labels(SYSTEM, self.site, operation).observe(time.perf_counter() - start)

    def _call_with_relogin(self, model: str, method: str, ids: Sequence[int] | None, params: dict[str, Any],
                           timeout: float | None, operation: str) -> Any:
        for attempt in (1, 2):
            try:
                transport = self._conn.get()
                effective = timeout if timeout is not None else self._conn.config().timeout
                return transport.execute(model, method, list(ids) if ids is not None else None, params, effective)
            except BaseException as exc:  # odoorpc's ConnectorError is a BaseException
                if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
                    raise
                err = classify(exc, operation)
                if isinstance(err, AuthError) and attempt == 1:
                    # A rotated key (re-read from the environment or file) may fix it: once.
                    self._conn.reset()
                    continue
                raise err from exc
        raise AssertionError("unreachable")

    @property
    def version(self) -> int:
        """The server's major version (17, 18, 19...)."""
        try:
            return major(self._conn.get().version)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            raise classify(exc, "version") from exc

    @property
    def protocol(self) -> str:
        return self._conn.get().name

    def field(self, model: str, logical: str) -> str:
        """The real name of a field that was renamed between versions."""
        names = FIELD_NAMES.get((model, logical))
        if not names:
            return logical
        v = self.version
        return [name for since, name in names if v >= since][-1]

    def fields(self, model: str, logical: Sequence[str]) -> list[str]:
        return [self.field(model, f) for f in logical]

    # -- the version map, applied (callers speak 17+ names) -------------------------------

    def _renames(self, model: str, names: Sequence[str]) -> dict[str, str]:
        """{logical: real} for those of `names` this server calls differently."""
        if not any((model, n) in FIELD_NAMES for n in names):
            return {}  # no version probe for the common case
        return {n: real for n in names if (real := self.field(model, n)) != n}

    def _real_domain(self, model: str, domain: list[Any]) -> list[Any]:
        leaves = [leaf for leaf in domain if isinstance(leaf, list | tuple) and len(leaf) == 3
                  and isinstance(leaf[0], str)]
        renames = self._renames(model, [leaf[0].split(".", 1)[0] for leaf in leaves])
        if not renames:
            return domain
        out: list[Any] = []
        for leaf in domain:
            if isinstance(leaf, list | tuple) and len(leaf) == 3 and isinstance(leaf[0], str):
                head, dot, rest = leaf[0].partition(".")
                if head in renames:
                    leaf = (renames[head] + dot + rest, leaf[1], leaf[2])
            out.append(leaf)
        return out

    def _real_values(self, model: str, values: dict[str, Any]) -> dict[str, Any]:
        renames = self._renames(model, list(values))
        return {renames.get(k, k): v for k, v in values.items()} if renames else values

    @staticmethod
    def _logical_rows(rows: list[dict[str, Any]], renames: dict[str, str]) -> list[dict[str, Any]]:
        if not renames:
            return rows
        back = {real: logical for logical, real in renames.items()}
        return [{back.get(k, k): v for k, v in row.items()} for row in rows]

    def _one_id(self, value: Any, operation: str) -> int:
        """One record id from what either protocol sends: `7` (16-18) or `[7]` (19's JSON-2)."""
        if isinstance(value, list | tuple) and len(value) == 1:
            value = value[0]
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise PermanentError(f"expected one record id, Odoo answered {value!r:.200}", system=SYSTEM,
                             operation=operation)

    def storable_domain(self) -> list[Any]:
        """Products that keep stock: `detailed_type` in 17, `is_storable` from 18."""
        return [("detailed_type", "=", "product")] if self.version <= 17 else [("is_storable", "=", True)]

    # -- reading --------------------------------------------------------------------------

    def search_read(self, model: str, domain: list[Any], fields: Sequence[str], *, order: str | None = None,
                    limit: int | None = None, offset: int = 0, context: dict[str, Any] | None = None,
                    timeout: float | None = None) -> list[dict[str, Any]]:
        if not fields:
            raise PermanentError("always pass explicit fields (all fields is slow and breaks on computes)",
                                 system=SYSTEM, operation=f"{model}.search_read")
        renames = self._renames(model, fields)
        params: dict[str, Any] = {"domain": self._real_domain(model, domain),
                                  "fields": [renames.get(f, f) for f in fields]}
        if order:
            params["order"] = order
        if limit:
            params["limit"] = limit
        if offset:
            params["offset"] = offset
        if context:
            params["context"] = context
        return self._logical_rows(list(self.call(model, "search_read", timeout=timeout, **params)), renames)

    def iter_search_read(self, model: str, domain: list[Any], fields: Sequence[str], page_size: int = 500, *,
                         context: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every matching record, in id order, one page per call (keyset on id, never offsets)."""
        last = 0
        while True:
            page = self.search_read(model, [*domain, ("id", ">", last)], fields, order="id asc", limit=page_size,
                                    context=context)
            yield from page
            if len(page) < page_size:
                return
            last = page[-1]["id"]

    def search(self, model: str, domain: list[Any], *, order: str | None = None, limit: int | None = None) -> list[int]:
        params: dict[str, Any] = {"domain": self._real_domain(model, domain)}
        if order:
            params["order"] = order
        if limit:
            params["limit"] = limit
        return list(self.call(model, "search", **params))

    def search_count(self, model: str, domain: list[Any]) -> int:
        return int(self.call(model, "search_count", domain=self._real_domain(model, domain)))

    def read(self, model: str, ids: Sequence[int], fields: Sequence[str],
             batch_size: int = 500) -> list[dict[str, Any]]:
        """Records by id, in batches; missing ids are left out (as Odoo does)."""
        out: list[dict[str, Any]] = []
        ids = list(ids)
        renames = self._renames(model, fields)
        real = [renames.get(f, f) for f in fields]
        for i in range(0, len(ids), batch_size):
            out += self.call(model, "read", ids[i:i + batch_size], fields=real)
        return self._logical_rows(out, renames)

    # -- writing --------------------------------------------------------------------------

    def write(self, model: str, ids: Sequence[int], values: dict[str, Any], batch_size: int = 1000) -> None:
        ids = list(ids)
        values = self._real_values(model, values)
        for i in range(0, len(ids), batch_size):
            self.call(model, "write", ids[i:i + batch_size], vals=values)

    def create(self, model: str, values: dict[str, Any]) -> int:
        """A plain create; the new id. Not idempotent: after a timeout, use `ensure_created`."""
        return self._one_id(self.call(model, "create", vals_list=self._real_values(model, values)),
                            f"{model}.create")

    def ensure_created(self, model: str, values: dict[str, Any], *, key: str,
                       ref_field: str | None = None) -> tuple[int, bool]:
        """Create once per `key`; returns (id, created). Safe to retry after a timeout.

        With `ref_field` (e.g. `origin`, `client_order_ref`, or a custom `x_siteops_key`) the
        key is written on the record itself, in the same transaction as the create, so a
        retry finds it; this is the preferred form. Without it, the key becomes an external
        id (`siteops.<key>` in ir.model.data) created right after the record: a crash
        between the two calls can leave one orphan, so prefer a ref field where the model
        has one.
        """
        if ref_field:
            found = self.search(model, [(ref_field, "=", key)], limit=1)
            if found:
                return found[0], False
            return self.create(model, {**values, ref_field: key}), True
        name = _XMLID_BAD.sub("_", key.lower()).strip("_")[:200] or "key"
        refs = self.search_read("ir.model.data", [("module", "=", XMLID_MODULE), ("name", "=", name)],
                                ["model", "res_id"], limit=1)
        if refs and refs[0]["model"] == model and self.search(model, [("id", "=", refs[0]["res_id"])],
                                                              limit=1):
            return self._one_id(refs[0]["res_id"], "ir.model.data.search_read"), False
        rid = self.create(model, values)
        if refs:
            self.write("ir.model.data", [refs[0]["id"]], {"model": model, "res_id": rid})
        else:
            self.create("ir.model.data", {"module": XMLID_MODULE, "name": name, "model": model, "res_id": rid,
                                          "noupdate": True})
        return rid, True

    def post_note(self, model: str, res_id: int, body: str, *, subject: str | None = None) -> int:
        """An internal note in the record's chatter; returns the mail.message id."""
        params: dict[str, Any] = {"body": body, "message_type": "comment", "subtype_xmlid": "mail.mt_note"}
        if subject:
            params["subject"] = subject
        return self._one_id(self.call(model, "message_post", [res_id], **params), f"{model}.message_post")

    def schedule_activity(self, model: str, res_id: int, summary: str, *, user_id: int | None = None,
                          deadline: date | str | None = None, note: str = "",
                          activity_type_xmlid: str = "mail.mail_activity_data_todo") -> tuple[int, bool]:
        """A to-do on the record for `user_id`; (id, created). An open activity with the same
        summary on the same record is reused, so a retried task never stacks duplicates."""
        existing = self.search("mail.activity", [("res_model", "=", model), ("res_id", "=", res_id),
                                                 ("summary", "=", summary)], limit=1)
        if existing:
            return existing[0], False
        module, _, xml_id = activity_type_xmlid.partition(".")
        ref = self.call("ir.model.data", "check_object_reference", module=module, xml_id=xml_id)
        if not (isinstance(ref, list | tuple) and len(ref) == 2):
            raise PermanentError(f"check_object_reference({activity_type_xmlid}) answered {ref!r:.200}",
                                 system=SYSTEM, operation="ir.model.data.check_object_reference")
        type_id = self._one_id(ref[1], "ir.model.data.check_object_reference")
        values: dict[str, Any] = {"res_model_id": self._model_id(model), "res_id": res_id, "summary": summary,
                                  "activity_type_id": type_id, "note": note}
        if user_id:
            values["user_id"] = user_id
        if deadline:
            values["date_deadline"] = deadline.isoformat() if isinstance(deadline, date) else deadline
        return self.create("mail.activity", values), True

    def _model_id(self, model: str) -> int:
        if model not in self._model_ids:
            found = self.search("ir.model", [("model", "=", model)], limit=1)
            if not found:
                raise PermanentError(f"model {model} is not installed", system=SYSTEM, operation="ir.model")
            self._model_ids[model] = found[0]
        return self._model_ids[model]


_LOCK = threading.Lock()
_CLIENTS: dict[int, OdooClient] = {}


def get_client(site: str = "") -> OdooClient:
    """The process's client (built after fork: the cache is keyed on the pid), bound to `site`."""
    pid = os.getpid()
    with _LOCK:
        client = _CLIENTS.get(pid)
        if client is None:
            _CLIENTS.clear()  # entries inherited from a parent process are not ours to use
            client = _CLIENTS[pid] = OdooClient()
    return client.for_site(site) if site else client


def reset_client() -> None:
    """Forget this process's client (tests; or after the environment changed)."""
    with _LOCK:
        client = _CLIENTS.pop(os.getpid(), None)
    if client is not None:
        client._conn.reset()
