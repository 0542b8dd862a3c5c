"""Odoo record changes -> follow-up tasks: the worker side of the ingress, and the catch-up.

`handle_change` re-reads the record (the webhook is a hint, posted before Odoo's commit),
checks that it belongs to the site whose URL it came through, and enqueues what
`siteops.rules.events` asks for. `catch_up` finds records changed since the last complete
pass that no event covered: Odoo's webhook action has a 1 s timeout and ignores failures,
so a dropped request would otherwise be lost for good.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from siteops.config.sites import Site, get_registry
from siteops.connectors.errors import PermanentError
from siteops.rules.events import WATCHED, FollowUp, follow_ups
from siteops.store import events as seen

log = logging.getLogger(__name__)

#: At most this many records are re-announced per model and pass; the watermark moves
#: only as far as they reach, so a backlog drains over several passes instead of flooding.
MAX_PER_PASS = 500

Dispatch = Callable[[FollowUp], str | None]


def warehouse_id(odoo: Any, site: Site) -> int:
    rows = odoo.search_read("stock.warehouse", [("code", "=", site.odoo_warehouse)], ["id"], limit=1)
    if not rows:
        raise PermanentError(f"no Odoo warehouse with code {site.odoo_warehouse!r} for site {site.code}",
                             system="odoo", operation="events")
    return int(rows[0]["id"])


def watched(model: str) -> Any:
    try:
        return WATCHED[model]
    except KeyError:
        raise PermanentError(f"model {model!r} is not watched; watched: {', '.join(WATCHED)}",
                             system="siteops", operation="events") from None


def handle_change(site_code: str, model: str, record_id: int, *, odoo: Any, dispatch: Dispatch) -> dict[str, Any]:
    w = watched(model)
    site = get_registry().get(site_code)
    wh = warehouse_id(odoo, site)
    rows = odoo.search_read(model, [("id", "=", record_id), (w.warehouse_path, "=", wh)],
                            ["id", "write_date", *w.fields], limit=1)
    if not rows:
        # Deleted, rolled back (Odoo 17 posts before commit), or another site's record
        # sent through this site's URL: nothing to do here either way, but say which.
        exists = odoo.search(model, [("id", "=", record_id)], limit=1)
        outcome = "other_site" if exists else "gone"
        log.info("event %s#%d for %s: %s", model, record_id, site_code, outcome)
        return {"outcome": outcome, "model": model, "record_id": record_id, "follow_ups": []}
    record = rows[0]
    sent = []
    for follow_up in follow_ups(site_code, model, record):
        task_id = dispatch(follow_up)
        sent.append({"task": follow_up.task, "args": list(follow_up.args), "why": follow_up.why,
                     "task_id": task_id})
    outcome = "dispatched" if any(s["task_id"] for s in sent) else "nothing_to_do"
    seen.mark_seen(site_code, model, record_id, str(record.get("write_date") or ""), outcome)
    return {"outcome": outcome, "model": model, "record_id": record_id, "follow_ups": sent}


def _parse(value: str) -> dt.datetime:
    # Odoo's datetimes are UTC text, "2024-05-01 10:00:00" (sometimes with microseconds).
    return dt.datetime.strptime(value[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)


def _odoo_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def catch_up(site_code: str, *, odoo: Any, announce: Callable[[str, int], None],
             now: dt.datetime) -> dict[str, int]:
    """Announce (enqueue `record_changed` for) every record changed since the watermark whose
    current version no event handled; then move the watermark. A failed read raises before
    the watermark moves, so the next pass reads the same window again."""
    site = get_registry().get(site_code)
    wh = warehouse_id(odoo, site)
    counts: dict[str, int] = {}
    for model, w in WATCHED.items():
        since = seen.watermark(site_code, model)
        if since is None:
            # The first pass only marks where watching starts: before siteops listened
            # there were no webhooks to miss, and announcing every record would flood.
            # One second past the newest change, because later passes read `>=` the
            # watermark (a change in the watermark's own second must not be missed) and
            # records never handled would otherwise be announced at that boundary.
            newest = odoo.search_read(model, [(w.warehouse_path, "=", wh)], ["write_date"],
                                      order="write_date desc", limit=1)
            start = _parse(str(newest[0]["write_date"])) if newest and newest[0]["write_date"] else now
            start = min(start, now)  # an Odoo clock ahead of ours must not hide the next changes
            seen.set_watermark(site_code, model, _odoo_time(start + dt.timedelta(seconds=1)))
            counts[model] = 0
            continue
        rows = list(odoo.iter_search_read(model, [(w.warehouse_path, "=", wh), ("write_date", ">=", since)],
                                          ["id", "write_date"], page_size=2000))
        rows.sort(key=lambda r: (str(r["write_date"]), int(r["id"])))
        rows = rows[:MAX_PER_PASS]
        handled = seen.seen_versions(site_code, model, [int(r["id"]) for r in rows])
        missed = [r for r in rows if handled.get(int(r["id"])) != str(r["write_date"])]
        for row in missed:
            announce(model, int(row["id"]))
        if rows:
            seen.set_watermark(site_code, model, str(rows[-1]["write_date"]))
        counts[model] = len(missed)
    return counts
