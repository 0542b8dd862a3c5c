"""The shape of an Odoo 17+ "Send Webhook Notification" payload (odoo.md §4.1), checked.

Pure: bytes in, an `OdooEvent` or a `BadEvent` naming what is wrong out. The payload is a
*hint*: Odoo 17 posts it inside the triggering transaction, before commit, so the worker
re-reads the record through RPC instead of trusting the fields sent here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

#: The models whose changes siteops acts on; anything else is refused (a misconfigured
#: automation rule should be noticed, not silently queued).
WATCHED_MODELS = (
    "stock.picking",
    "purchase.order",
    "stock.quant",
    "stock.warehouse.orderpoint",
)


class BadEvent(ValueError):
    pass


@dataclass(frozen=True)
class OdooEvent:
    model: str
    record_id: int
    action: str | None


def parse_event(body: bytes) -> OdooEvent:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadEvent(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadEvent(f"body must be a JSON object, got {type(data).__name__}")
    model = data.get("_model")
    if not isinstance(model, str) or not model:
        raise BadEvent("field _model: missing or not a string")
    if model not in WATCHED_MODELS:
        raise BadEvent(f"field _model: {model!r} is not watched; watched: {', '.join(WATCHED_MODELS)}")
    rid = data.get("_id", data.get("id"))
    if isinstance(rid, bool) or not isinstance(rid, int) or rid <= 0:
        raise BadEvent("field _id: missing or not a positive integer")
    action = data.get("_action")
    return OdooEvent(model=model, record_id=rid, action=action if isinstance(action, str) else None)
