"""Beat entries for EDI: per site served by a partner, poll the mailboxes and look for
confirmed orders to send. Merged into the schedule by `build_beat_schedule`."""

from __future__ import annotations

from typing import Any

from siteops.config.queues import site_queue

POLL_EVERY = 60.0  # seconds between mailbox polls of one site
ORDERS_EVERY = 300.0  # seconds between looks for confirmed orders to send


def edi_beat_entries(registry: Any) -> dict[str, dict[str, Any]]:
    from siteops.config.edi import get_edi

    served = {site for partner in get_edi() for site in partner.ship_to}
    entries: dict[str, dict[str, Any]] = {}
    for site in registry:
        if site.code not in served:
            continue
        for name, task, every in (("poll", "siteops.edi.poll_inbound", POLL_EVERY),
                                  ("orders", "siteops.edi.scan_orders", ORDERS_EVERY)):
            entries[f"edi:{site.code}:{name}"] = {
                "task": task, "schedule": every, "args": [site.code],
                "options": {"queue": site_queue(site.code), "expires": every * 0.9},
            }
    return entries
