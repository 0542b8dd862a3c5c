"""Odoo 17's "Send Webhook Notification" server action, for testing webhook receivers.

A rule says: when a record of `model` is created and/or written, POST its payload to
`url`. As in Odoo 17 (odoo.md §4.1): a JSON object with sorted keys, `_action`
("<name>(#<id>)"), `_id` and `_model`, plus `id` and the selected fields read with
`load=None` (many2one as a bare id, dates through `str()`); only `Content-Type:
application/json`, no signature; a 1 s timeout and failures ignored; sent synchronously,
inside the triggering request (Odoo 17 sends before its commit).

A rule is the automation rule (`base.automation`, odoo.md §4.2) that runs the action:
`domain` is its `filter_domain` ("Apply on"), matched against the record after the
change; `pre_domain` its `filter_pre_domain`, matched against the record before a write
(not on create). Both are Odoo domains over the rule's model, evaluated with the
simulator's own domain engine; a rule whose domain does not match does not fire.
"""

from __future__ import annotations

import itertools
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any

from siteops.sim.odoo.domain import Compiler
from siteops.sim.odoo.store import OdooError

log = logging.getLogger(__name__)
_ids = itertools.count(1)
TRIGGERS = ("on_create", "on_write", "on_create_or_write")


@dataclass
class WebhookRule:
    model: str
    url: str
    name: str = "Webhook"
    trigger: str = "on_create_or_write"
    fields: list[str] = field(default_factory=list)
    domain: list[Any] = field(default_factory=list)
    pre_domain: list[Any] = field(default_factory=list)
    id: int = field(default_factory=lambda: next(_ids))

    def __post_init__(self) -> None:
        if self.trigger not in TRIGGERS:
            raise ValueError(f"trigger must be one of {', '.join(TRIGGERS)}")
        for name in ("domain", "pre_domain"):
            if not isinstance(getattr(self, name), list):
                raise ValueError(f"{name} must be a list (an Odoo domain), got {getattr(self, name)!r}")
        if not isinstance(self.fields, list) or not all(isinstance(f, str) for f in self.fields):
            raise ValueError("fields must be a list of field names")

    def fires_on(self, model: str, event: str) -> bool:
        return model == self.model and (self.trigger == "on_create_or_write" or self.trigger == f"on_{event}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def validate(db: Any, rule: WebhookRule) -> None:
    """Refuse (ValueError) a rule Odoo would not save: an unknown model, an unknown field to
    send, a domain that does not compile on the model (the message names the field)."""
    table = db.tables.get(rule.model)
    if table is None:
        raise ValueError(f"model: unknown model {rule.model!r}")
    unknown = [f for f in rule.fields if f not in table.fields]
    if unknown:
        raise ValueError(f"fields: invalid field {unknown[0]!r} on model {rule.model!r}")
    for name in ("domain", "pre_domain"):
        try:
            Compiler(db, table, active_test=False).compile(getattr(rule, name))
        except OdooError as exc:
            raise ValueError(f"{name}: {exc.message}") from None


def rules(db: Any) -> list[WebhookRule]:
    if not hasattr(db, "webhooks"):
        db.webhooks = []
    return db.webhooks  # type: ignore[no-any-return]


def _matches(db: Any, table: Any, row: dict[str, Any], domain: list[Any]) -> bool:
    # Compiled at each use: a relational path (picking_type_id.warehouse_id) is resolved
    # against the data as it is now, like Odoo's filtered_domain.
    return not domain or bool(Compiler(db, table, active_test=False).compile(domain).test(row))


def snapshot(env: Any, table: Any, rid: int) -> dict[str, Any] | None:
    """The row before a write, when a rule on this model has a pre-domain to match it."""
    if any(r.pre_domain and r.fires_on(table.name, "write") for r in rules(env.db)):
        return dict(table.rows[rid])
    return None


def payload(env: Any, table: Any, rid: int, rule: WebhookRule) -> bytes:
    body: dict[str, Any] = {"_action": f"{rule.name}(#{rule.id})", "_id": rid, "_model": table.name}
    if rule.fields:
        [record] = env.read_rows(table, [rid], rule.fields, load=None)
        body.update(record)
    return json.dumps(body, sort_keys=True, default=str).encode()


def fire(env: Any, table: Any, rid: int, event: str, before: dict[str, Any] | None = None) -> None:
    """Called by the ORM after a create or a write of one record (`before`: the row before a
    write, from `snapshot`)."""
    row = table.rows.get(rid)
    if row is None:
        return
    for rule in rules(env.db):
        if not rule.fires_on(table.name, event):
            continue
        if event == "write" and rule.pre_domain and not _matches(env.db, table, before or row, rule.pre_domain):
            continue
        if not _matches(env.db, table, row, rule.domain):
            continue
        data = payload(env, table, rid, rule)
        request = urllib.request.Request(rule.url, data=data, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=1.0) as response:
                response.read()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            # Odoo logs and carries on: the triggering transaction still succeeds.
            # Without the path: receivers put their secret token in it (odoo.md §4.1).
            where = urllib.parse.urlsplit(rule.url)
            log.warning("webhook %s to %s://%s/... failed: %s", rule.name, where.scheme, where.netloc,
                        type(exc).__name__)
