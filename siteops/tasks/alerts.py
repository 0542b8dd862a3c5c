"""Alerts for findings, on opening and on escalation only: an Odoo activity and chatter
note on the record, and a signed webhook. Each channel is its own task so a broken
webhook never holds back the Odoo activity, and each side effect is idempotent: a
retry, a redelivery or a replay finds the activity or delivery it already made.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from siteops.config.sites import Site, get_registry
from siteops.connectors import webhook
from siteops.observability.metrics import ALERTS
from siteops.rules.findings import SEVERITY_NAMES
from siteops.store import findings as store
from siteops.tasks.base import SiteopsTask, siteops_task


def alert(site: str, finding_id: int, event: str) -> None:
    """Enqueue the alerts of one finding event (called by scans)."""
    notify_odoo.delay(site, finding_id, event)
    if webhook.configured_url():
        send_webhook.delay(site, finding_id, event)


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


@siteops_task("siteops.alerts.notify_odoo", idempotent=True, business_key="finding_id")
def notify_odoo(self: SiteopsTask, site: str, finding_id: int, event: str) -> dict[str, Any]:
    from siteops.connectors.odoo import get_client

    finding = store.get(finding_id)
    if finding is None or finding.status == "resolved":
        return {"skipped": "finding gone or resolved"}
    odoo = get_client(site)
    login = recipient(get_registry().get(site), event)
    users = odoo.search_read("res.users", [("login", "=", login)], ["id"], limit=1)
    user_id = int(users[0]["id"]) if users else None
    tag = marker(finding_id)
    summary = f"{tag} {'ESCALATED: ' if event == 'escalated' else ''}{finding.title}"[:250]
    note = (f"<p>{finding.title}</p><p>Severity: {SEVERITY_NAMES.get(finding.severity, finding.severity)}; "
            f"rule {finding.rule} v{finding.rule_version}; parameters {finding.params}.</p>")
    deadline = (dt.date.today() + dt.timedelta(days=1 if event == "escalated" else 2)).isoformat()

    def existing_activity() -> int | None:
        rows = odoo.search_read("mail.activity", [("res_model", "=", finding.model), ("res_id", "=", finding.record_id),
                                                  ("summary", "=like", f"{summary[:60]}%")], ["id"], limit=1)
        return int(rows[0]["id"]) if rows else None

    activity_id = self.idempotent_call(
        f"odoo:{site}:activity:{finding_id}:{event}",
        lambda: odoo.schedule_activity(finding.model, finding.record_id, summary, note=note, user_id=user_id,
                                       deadline=deadline)[0],
        check=existing_activity,
    )
    message_id = self.idempotent_call(
        f"odoo:{site}:note:{finding_id}:{event}",
        lambda: odoo.post_note(finding.model, finding.record_id, f"{tag} {event}: {finding.title}"),
        # No check yet: a repeated chatter note is visible but harmless.
        on_unknown="repeat",
    )
    if event == "opened":
        store.set_activity(finding_id, int(activity_id))
    ALERTS.labels(site, "odoo", event).inc()
    return {"activity_id": activity_id, "message_id": message_id, "user": login}


@siteops_task("siteops.alerts.send_webhook", idempotent=True, business_key="finding_id")
def send_webhook(self: SiteopsTask, site: str, finding_id: int, event: str) -> dict[str, Any]:
    url = webhook.configured_url()
    finding = store.get(finding_id)
    if url is None or finding is None:
        return {"skipped": "no webhook configured" if url is None else "finding gone"}
    delivery = f"{site}:{finding_id}:{event}"
    payload = {"event": f"finding.{event}", "site": site, "delivery": delivery, "finding": store.as_dict(finding)}
    status = self.idempotent_call(
        f"webhook:{delivery}",
        lambda: webhook.post(url, payload, secret=webhook.configured_secret(), delivery_id=delivery),
        # The receiver dedupes on the delivery id header, so repeating is safe.
        on_unknown="repeat",
    )
    ALERTS.labels(site, "webhook", event).inc()
    return {"status": status, "delivery": delivery}
