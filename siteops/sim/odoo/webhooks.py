"""Odoo 17's "Send Webhook Notification" server action, for testing webhook receivers.

A rule says: when a record of `model` is created and/or written, POST its payload to
`url`. As in Odoo 17 (odoo.md §4.1): a JSON object with sorted keys, `_action`
("<name>(#<id>)"), `_id` and `_model`, plus `id` and the selected fields read with
`load=None` (many2one as a bare id, dates through `str()`); only `Content-Type:
application/json`, no signature; a 1 s timeout and failures ignored; sent synchronously,
inside the triggering request (Odoo 17 sends before its commit).
"""

from __future__ import annotations

import itertools
import json
import logging
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any

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
    id: int = field(default_factory=lambda: next(_ids))

    def __post_init__(self) -> None:
        if self.trigger not in TRIGGERS:
            raise ValueError(f"trigger must be one of {', '.join(TRIGGERS)}")

    def fires_on(self, model: str, event: str) -> bool:
        return model == self.model and (self.trigger == "on_create_or_write" or self.trigger == f"on_{event}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def rules(db: Any) -> list[WebhookRule]:
    if not hasattr(db, "webhooks"):
        db.webhooks = []
    return db.webhooks  # type: ignore[no-any-return]


def payload(env: Any, table: Any, rid: int, rule: WebhookRule) -> bytes:
    body: dict[str, Any] = {"_action": f"{rule.name}(#{rule.id})", "_id": rid, "_model": table.name}
    if rule.fields:
        [record] = env.read_rows(table, [rid], rule.fields, load=None)
        body.update(record)
    return json.dumps(body, sort_keys=True, default=str).encode()


def fire(env: Any, table: Any, rid: int, event: str) -> None:
    """Called by the ORM after a create or a write of one record."""
    for rule in rules(env.db):
        if not rule.fires_on(table.name, event):
            continue
        data = payload(env, table, rid, rule)
        request = urllib.request.Request(rule.url, data=data, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=1.0) as response:
                response.read()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            # Odoo logs and carries on: the triggering transaction still succeeds.
            log.warning("webhook %s to %s failed: %s", rule.name, rule.url, exc)
