"""Beat schedules as data: `build_beat_schedule(registry)` -> Celery's beat_schedule dict.

One entry per (site, scan kind), from the policy's `schedules` table (minutes between
scans; 0 switches a scan off) with the site's overrides. Entries are staggered by site
so that sites do not hit Odoo in the same minute, routed to the site's queue, and carry
`expires` (just under their period) so a beat or queue that was down never releases a
burst of stale copies of the same scan.
"""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab, schedule

from siteops.config.queues import PLATFORM_QUEUE, site_queue
from siteops.rules.findings import KINDS
from siteops.schedules.edi import edi_beat_entries

# Lost work must resume within a minute of a worker's death: a heartbeat expires after
# 10 s, and this sweep runs every 10 s: lost work resumes within about 30 s.
RECOVER_LOST_EVERY = 10.0


def scan_task(kind: str) -> str:
    return f"siteops.scan.{kind}"


def _every(minutes: float, offset: int) -> Any:
    """A crontab when the period divides the hour (so the stagger is a fixed minute),
    otherwise a plain interval."""
    if minutes >= 1 and float(minutes).is_integer() and 60 % int(minutes) == 0:
        m = int(minutes)
        return crontab(minute=f"{offset % m}-59/{m}" if m > 1 else "*")
    if minutes >= 60 and float(minutes / 60).is_integer() and 24 % int(minutes / 60) == 0:
        h = int(minutes / 60)
        return crontab(minute=str(offset % 60), hour=f"*/{h}")
    return schedule(run_every=minutes * 60)


def build_beat_schedule(registry: Any) -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {
        "recover-lost-work": {
            "task": "siteops.ops.recover_lost",
            "schedule": RECOVER_LOST_EVERY,
            "options": {"queue": PLATFORM_QUEUE, "expires": RECOVER_LOST_EVERY * 2},
        },
    }
    for index, site in enumerate(registry):
        schedules = site.params.get("schedules", {})
        for kind in KINDS:
            minutes = float(schedules.get(kind, 0) or 0)
            if minutes <= 0:
                continue  # switched off for this site
            entries[f"scan:{site.code}:{kind}"] = {
                "task": scan_task(kind),
                "schedule": _every(minutes, offset=index * 3 + KINDS.index(kind)),
                "args": [site.code],
                "options": {"queue": site_queue(site.code), "expires": max(5.0, minutes * 60 * 0.9)},
            }
    entries.update(edi_beat_entries(registry))
    return entries


def describe(entries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The schedule as plain data for `siteops schedule`."""
    out = []
    for name, entry in entries.items():
        sched = entry["schedule"]
        if isinstance(sched, crontab):
            when = f"cron {sched._orig_minute} {sched._orig_hour} * * *"
        elif isinstance(sched, schedule):
            when = f"every {sched.run_every.total_seconds():g}s"
        else:
            when = f"every {float(sched):g}s"
        out.append({"name": name, "task": entry["task"], "args": entry.get("args", []),
                    "queue": entry["options"]["queue"], "expires": entry["options"]["expires"], "when": when})
    return out
