"""Alert tasks, one per channel: an Odoo activity and note, a signed webhook.

Thin over `siteops.services.alerts` (where the alerts go, what they say, the ledger of
what is owed). Importing that module also registers the owed-alerts sweep, a
housekeeping job of the platform worker.
"""

from __future__ import annotations

from typing import Any

from siteops.services import alerts
from siteops.tasks.base import SiteopsTask, siteops_task


@siteops_task("siteops.alerts.notify_odoo", idempotent=True, business_key="finding_id")
def notify_odoo(self: SiteopsTask, site: str, finding_id: int, event: str) -> dict[str, Any]:
    return alerts.notify_odoo(self, site, finding_id, event)


@siteops_task("siteops.alerts.send_webhook", idempotent=True, business_key="finding_id")
def send_webhook(self: SiteopsTask, site: str, finding_id: int, event: str) -> dict[str, Any]:
    return alerts.send_webhook(self, site, finding_id, event)
