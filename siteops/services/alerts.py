"""Alert orchestration: where an alert goes in Odoo, what it says, and that it goes out exactly once.

Channels: an Odoo activity plus a chatter note (`notify_odoo`), and a signed webhook
(`send_webhook`); each is its own task so a broken webhook never holds back Odoo.

Exactly once, even across crashes:

- the scan writes each alert it owes into the ledger (`store.alert_debts`) in the same
  transaction as the finding, publishes the tasks after its commit, and the sweep below
  re-publishes whatever is still unpaid and untouched for `sweep_grace()`;
- a task pays its debt when its work is done; its side effects go through
  `idempotent_call` with a `check` that finds them in Odoo by the `[siteops #<id>]`
  marker (the activity by its summary, the note by its body), so a repeat, a redelivery
  or a timeout whose call did reach Odoo never makes a second one;
- a record that no longer exists in Odoo makes the alert moot (paid, outcome ``moot``),
  not a dead letter: there is nothing left to alert on.

Where the alert goes: only records with a chatter (`mail.thread` and
`mail.activity.mixin`) can take a note or an activity. `TARGETS` maps each finding model
to the record that can show it: a picking is its own target; a quant (no chatter in
Odoo) goes to its product, with the location and quantities in the text; a move goes to
its picking, or to its product when it has none (inventory adjustments).
"""

from __future__ import annotations

import datetime as dt
import html
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from siteops.config.sites import Site, get_registry
from siteops.connectors import webhook
from siteops.connectors.errors import MissingRecord, PermanentError
from siteops.observability.metrics import ALERTS
from siteops.rules.findings import SEVERITY_NAMES
from siteops.store import alert_debts
from siteops.store import findings as store
from siteops.store.models import Finding
from siteops.worker.housekeeping import housekeeping_job

log = logging.getLogger(__name__)

TASKS = {"odoo": "siteops.alerts.notify_odoo", "webhook": "siteops.alerts.send_webhook"}

#: Models whose records have a chatter and take activities in Odoo 16-19 (`mail.thread`
#: and `mail.activity.mixin`). `message_post` or an activity anywhere else fails in Odoo.
CHATTER_MODELS = frozenset({"stock.picking", "product.product", "product.template", "purchase.order",
                            "sale.order", "res.partner"})


@dataclass(frozen=True)
class Target:
    """The chatter-capable record an alert is posted on, and what to add to the text about the original."""

    model: str
    res_id: int
    context: str = ""


def m2o(value: Any) -> tuple[int | None, str]:
    if isinstance(value, list | tuple) and value:
        return int(value[0]), str(value[1]) if len(value) > 1 else str(value[0])
    return None, "?"


def _itself(model: str) -> Callable[[Any, Finding], Target | None]:
    """A record with a chatter of its own shows its alert itself (if it still exists)."""

    def find(odoo: Any, f: Finding) -> Target | None:
        rows = odoo.search_read(model, [("id", "=", f.record_id)], ["id"], limit=1)
        return Target(model, f.record_id) if rows else None

    return find


def _quant(odoo: Any, f: Finding) -> Target | None:
    rows = odoo.search_read("stock.quant", [("id", "=", f.record_id)],
                            ["product_id", "location_id", "quantity", "reserved_quantity", "inventory_quantity",
                             "inventory_diff_quantity", "inventory_quantity_set"], limit=1)
    if not rows:
        return None
    q = rows[0]
    product_id, _ = m2o(q.get("product_id"))
    _, location = m2o(q.get("location_id"))
    text = (f"Quant #{f.record_id} at {location}: on hand {float(q.get('quantity') or 0):g}, "
            f"reserved {float(q.get('reserved_quantity') or 0):g}")
    if q.get("inventory_quantity_set"):
        text += (f", counted {float(q.get('inventory_quantity') or 0):g} "
                 f"(difference {float(q.get('inventory_diff_quantity') or 0):+g})")
    return Target("product.product", product_id, text) if product_id else None


def _move(odoo: Any, f: Finding) -> Target | None:
    rows = odoo.search_read("stock.move", [("id", "=", f.record_id)],
                            ["reference", "product_id", "picking_id", "location_id", "location_dest_id",
                             "product_uom_qty", "date"], limit=1)
    if not rows:
        return None
    m = rows[0]
    product_id, product = m2o(m.get("product_id"))
    picking_id, _ = m2o(m.get("picking_id"))
    text = (f"Move #{f.record_id} {m.get('reference') or ''} of {product}: {float(m.get('product_uom_qty') or 0):g} "
            f"from {m2o(m.get('location_id'))[1]} to {m2o(m.get('location_dest_id'))[1]} on {m.get('date')}")
    if picking_id:
        return Target("stock.picking", picking_id, text)
    return Target("product.product", product_id, text) if product_id else None


#: Finding model -> how to find the record that shows its alert (None: the record is gone).
TARGETS: dict[str, Callable[[Any, Finding], Target | None]] = {
    "stock.picking": _itself("stock.picking"),  # scans, shipment exceptions
    "purchase.order": _itself("purchase.order"),  # EDI: acknowledgments changed, rejected or overdue
    "stock.quant": _quant,
    "stock.move": _move,
}


def target(odoo: Any, finding: Finding) -> Target | None:
    find = TARGETS.get(finding.model)
    if find is None:
        raise PermanentError(f"no alert target for findings on {finding.model}; add it to services.alerts.TARGETS",
                             system="odoo", operation="alert")
    found = find(odoo, finding)
    if found is not None and found.model not in CHATTER_MODELS:  # never message_post where Odoo cannot
        raise PermanentError(f"alert target {found.model} has no chatter", system="odoo", operation="alert")
    return found


def recipient(site: Site, event: str) -> str:
    """The site's first responsible user; on escalation, the second recipient."""
    if event == "escalated":
        if site.escalate_to:
            return site.escalate_to[0]
        if len(site.responsible) > 1:
            return site.responsible[1]
    return site.responsible[0]


def marker(finding_id: int) -> str:
    return f"[siteops #{finding_id}]"


# --- publishing ------------------------------------------------------------------------

def publish(site: str, finding_id: int, event: str, channel: str) -> None:
    """Enqueue one owed alert (the scan after its commit, the sweep for what stayed unpaid)."""
    from siteops.tasks import alerts as tasks  # the task objects (tasks/ is thin over this module)

    task = {"odoo": tasks.notify_odoo, "webhook": tasks.send_webhook}[channel]
    task.delay(site, finding_id, event)


def sweep_grace() -> dt.timedelta:
    """How long a debt stays untouched before the sweep re-publishes it.

    Every attempt of an alert task touches its debt, and a retry waits at most the policy's
    backoff cap, so a task still retrying is never duplicated; five minutes at least.
    """
    return dt.timedelta(seconds=max(300.0, get_registry().retry.backoff_cap_seconds + 60.0))


@housekeeping_job("sweep-owed-alerts", every=60)
def sweep_owed_alerts(app: Any, *, grace: dt.timedelta | None = None, limit: int = 500) -> int:
    """Re-publish the alerts still owed and untouched for `grace`; returns how many.

    A debt whose task is in the dead-letter store is left there (replaying it pays the
    debt): re-publishing it would only make another dead letter. Safe in two platform
    workers at once: each debt is claimed with a guarded update before it is published.
    """
    owed = alert_debts.unpaid(older_than=grace if grace is not None else sweep_grace(), limit=limit)
    if not owed:
        return 0
    parked = alert_debts.dead_lettered(owed, TASKS)
    published = 0
    for debt in owed:
        if (debt.finding_id, debt.event, debt.channel) in parked or not alert_debts.claim_for_publish(debt):
            continue
        publish(debt.site, debt.finding_id, debt.event, debt.channel)
        published += 1
    if published:
        log.warning("sweep: re-published %d owed alerts (their first publish was lost or is late)", published)
    return published


# --- the alert bodies (called by the thin tasks in siteops.tasks.alerts) ------------------

def notify_odoo(task: Any, site: str, finding_id: int, event: str) -> dict[str, Any]:
    """An activity for the site's responsible user and a chatter note, on the finding's target record."""
    from siteops.connectors.odoo import get_client

    finding = store.get(finding_id)
    if finding is None or finding.status == "resolved":
        return _moot(finding_id, event, "odoo", "finding gone or resolved before it was alerted")
    if not alert_debts.attempt(finding_id, event, "odoo"):
        return {"skipped": "already sent", "finding_id": finding_id, "event": event}
    odoo = get_client(site)
    try:
        where = target(odoo, finding)
        if where is None:
            return _moot(finding_id, event, "odoo", f"{finding.model} {finding.record_id} no longer exists in Odoo")
        result = _post(task, odoo, site, finding, event, where)
    except MissingRecord as exc:  # deleted between our look-up and our call
        return _moot(finding_id, event, "odoo", str(exc))
    alert_debts.pay(finding_id, event, "odoo", "sent")
    ALERTS.labels(site, "odoo", event).inc()
    return result


def _post(task: Any, odoo: Any, site: str, finding: Finding, event: str, where: Target) -> dict[str, Any]:
    login = recipient(get_registry().get(site), event)
    users = odoo.search_read("res.users", [("login", "=", login)], ["id"], limit=1)
    user_id = int(users[0]["id"]) if users else None
    tag = marker(finding.id)
    summary = f"{tag} {'ESCALATED: ' if event == 'escalated' else ''}{finding.title}"[:250]
    about = f"<p>{html.escape(where.context)}</p>" if where.context else ""
    note = (f"<p>{html.escape(finding.title)}</p>{about}<p>Severity: "
            f"{SEVERITY_NAMES.get(finding.severity, finding.severity)}; rule {finding.rule} v{finding.rule_version}; "
            f"parameters {html.escape(str(finding.params))}.</p>")
    deadline = (dt.date.today() + dt.timedelta(days=1 if event == "escalated" else 2)).isoformat()
    # The note's marker says which finding and which event: the check finds exactly this note.
    note_head = f"{tag} {event}:"
    body = f"{note_head} {finding.title}" + (f" ({where.context})" if where.context else "")

    def existing_activity() -> int | None:
        rows = odoo.search_read("mail.activity", [("res_model", "=", where.model), ("res_id", "=", where.res_id),
                                                  ("summary", "=like", f"{summary[:60]}%")], ["id"], limit=1)
        return int(rows[0]["id"]) if rows else None

    def existing_note() -> int | None:
        rows = odoo.search_read("mail.message", [("model", "=", where.model), ("res_id", "=", where.res_id),
                                                 ("body", "like", note_head)], ["id"], limit=1)
        return int(rows[0]["id"]) if rows else None

    activity_id = task.idempotent_call(
        f"odoo:{site}:activity:{finding.id}:{event}",
        lambda: odoo.schedule_activity(where.model, where.res_id, summary, note=note, user_id=user_id,
                                       deadline=deadline)[0],
        check=existing_activity,
    )
    message_id = task.idempotent_call(
        f"odoo:{site}:note:{finding.id}:{event}",
        lambda: odoo.post_note(where.model, where.res_id, body),
        check=existing_note,
    )
    if event == "opened":
        store.set_activity(finding.id, int(activity_id))
    return {"activity_id": activity_id, "message_id": message_id, "user": login, "target": [where.model, where.res_id]}


def send_webhook(task: Any, site: str, finding_id: int, event: str) -> dict[str, Any]:
    url = webhook.configured_url()
    finding = store.get(finding_id)
    if finding is None:
        return _moot(finding_id, event, "webhook", "finding gone")
    if url is None:
        return _moot(finding_id, event, "webhook", "no webhook configured any more")
    if not alert_debts.attempt(finding_id, event, "webhook"):
        return {"skipped": "already sent", "finding_id": finding_id, "event": event}
    delivery = f"{site}:{finding_id}:{event}"
    payload = {"event": f"finding.{event}", "site": site, "delivery": delivery, "finding": store.as_dict(finding)}
    status = task.idempotent_call(
        f"webhook:{delivery}",
        lambda: webhook.post(url, payload, secret=webhook.configured_secret(), delivery_id=delivery),
        # The receiver dedupes on the X-Siteops-Delivery header, so repeating is safe.
        on_unknown="repeat",
    )
    alert_debts.pay(finding_id, event, "webhook", "sent")
    ALERTS.labels(site, "webhook", event).inc()
    return {"status": status, "delivery": delivery}


def _moot(finding_id: int, event: str, channel: str, why: str) -> dict[str, Any]:
    log.info("alert %s of finding %d on %s is moot: %s", event, finding_id, channel, why)
    alert_debts.pay(finding_id, event, channel, "moot", why[:2000])
    return {"moot": why, "finding_id": finding_id, "event": event}
