"""Triage of inbound customer messages: classify one stored message (by its row id only)."""

from __future__ import annotations

from typing import Any

from siteops.connectors.odoo import get_client
from siteops.services import triage
from siteops.store.models import utcnow
from siteops.tasks.base import SiteopsTask, siteops_task
from siteops.triage import mailbox
from siteops.worker.housekeeping import housekeeping_job


@siteops_task("siteops.triage.classify_message", idempotent=True, business_key="message_db_id")
def classify_message(self: SiteopsTask, site: str, message_db_id: int) -> dict[str, Any]:
    """Classify, link, prioritise and route (or hold for review) one stored message.

    Only the row id travels: the message's text is personal data and stays in the store."""
    return triage.classify_message(self, site, int(message_db_id), odoo=get_client(site), now=utcnow)


def _publish(app: Any) -> mailbox.Publish:
    def publish(name: str, args: list[Any]) -> str:
        return str(app.send_task(name, args=args).id)

    return publish


@housekeeping_job("triage-mailbox", every=15)
def triage_mailbox(app: Any) -> int:
    """Store the `.eml` files of the mailbox directory and enqueue their classification."""
    # Made at the first pass, so an operator finds where to drop files.
    mailbox.inbox_dir().mkdir(parents=True, exist_ok=True)
    counts = mailbox.process_inbox(_publish(app), triage.default_site())
    return counts["stored"] + counts["quarantined"]


@housekeeping_job("triage-retention", every=3600)
def triage_retention(app: Any) -> int:
    """Delete message bodies (and archived files) past the policy's retention period."""
    now = utcnow()
    return mailbox.purge_expired(now) + mailbox.purge_archive(now)
