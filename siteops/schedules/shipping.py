"""Beat entries of shipping, per site that ships with a carrier: the scan for ready
pickings without a label (`schedules.ship_ready`, default 5 minutes) and the tracking
poll (`schedules.sync_tracking`, default 10: webhooks bring most updates, the poll is
the backstop). 0 switches either off for a site.
"""

from __future__ import annotations

from typing import Any

from siteops.config.queues import site_queue

DEFAULT_MINUTES = {"ship_ready": 5.0, "sync_tracking": 10.0}


def shipping_entries(registry: Any) -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    for site in registry:
        if not site.params.get("carrier"):
            continue
        for verb, default in DEFAULT_MINUTES.items():
            minutes = float(site.params.get("schedules", {}).get(verb, default) or 0)
            if minutes <= 0:
                continue  # switched off for this site
            entries[f"shipping:{site.code}:{verb}"] = {
                "task": f"siteops.shipping.{verb}",
                "schedule": minutes * 60,
                "args": [site.code],
                "options": {"queue": site_queue(site.code), "expires": max(5.0, minutes * 60 * 0.9)},
            }
    return entries
