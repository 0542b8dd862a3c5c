"""Beat schedules as data: `build_beat_schedule(registry)` -> Celery's beat_schedule dict.

One entry per (site, scan kind), from the policy's `schedules` table (minutes between
scans; 0 switches a scan off) with the site's overrides. Entries are staggered (see
`Stagger`): each kind is spread evenly over its period whatever the number of sites, and
kinds avoid each other's minutes where the hour has room. They are routed to the site's queue, and carry
`expires` (just under their period) so a beat or queue that was down never releases a
burst of stale copies of the same scan.
"""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab, schedule

from siteops.config.queues import site_queue
from siteops.rules.findings import KINDS
from siteops.schedules.edi import edi_beat_entries
from siteops.schedules.shipping import shipping_entries


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


def _slot_period(minutes: float) -> int | None:
    """The cycle (in minutes, within the hour) a crontab entry's offset lives in, or None
    when the period makes a plain interval (no fixed minute to choose)."""
    if minutes >= 1 and float(minutes).is_integer() and 60 % int(minutes) == 0:
        return int(minutes)
    if minutes >= 60 and float(minutes / 60).is_integer() and 24 % int(minutes / 60) == 0:
        return 60
    return None


class Stagger:
    """Chooses each entry's minute offset, one group (a kind at one period) at a time.

    Evenness first: an entry goes to one of the offsets its group uses least, so at any
    number of sites the busiest minute of a kind has at most one scan more than the
    quietest. Among those, the offset whose minutes of the hour are least busy with the
    groups placed before (shortest periods first: they are the least flexible), so kinds
    do not share minutes while the hour has room (the demo's 20 scans: none do).
    """

    def __init__(self) -> None:
        self.load = [0] * 60  # scans starting in each minute of the hour, all groups so far

    def place(self, period: int, count: int) -> list[int]:
        used = [0] * period
        offsets = []
        for _ in range(count):
            fewest = min(used)

            def cost(offset: int) -> tuple[int, int, int]:
                minutes = [self.load[m] for m in range(offset, 60, period)]
                return max(minutes), sum(minutes), offset

            best = min((o for o in range(period) if used[o] == fewest), key=cost)
            used[best] += 1
            for m in range(best, 60, period):
                self.load[m] += 1
            offsets.append(best)
        return offsets


def _offsets(registry: Any) -> dict[tuple[str, str], int]:
    groups: dict[tuple[int, str, float], list[str]] = {}
    for site in registry:
        schedules = site.params.get("schedules", {})
        for kind in KINDS:
            minutes = float(schedules.get(kind, 0) or 0)
            period = _slot_period(minutes) if minutes > 0 else None
            if period is not None:
                groups.setdefault((period, kind, minutes), []).append(site.code)
    stagger = Stagger()
    out: dict[tuple[str, str], int] = {}
    for (period, kind, _m), codes in sorted(groups.items(), key=lambda g: (g[0][0], KINDS.index(g[0][1]), g[0][2])):
        for code, offset in zip(codes, stagger.place(period, len(codes)), strict=True):
            out[(code, kind)] = offset
    return out


def build_beat_schedule(registry: Any) -> dict[str, dict[str, Any]]:
    # Lost-work recovery is not here: it runs inside the platform worker
    # (siteops.worker.housekeeping), so it floods neither Flower nor the audit trail.
    entries: dict[str, dict[str, Any]] = {}
    offsets = _offsets(registry)
    for site in registry:
        schedules = site.params.get("schedules", {})
        for kind in KINDS:
            minutes = float(schedules.get(kind, 0) or 0)
            if minutes <= 0:
                continue  # switched off for this site
            entries[f"scan:{site.code}:{kind}"] = {
                "task": scan_task(kind),
                "schedule": _every(minutes, offset=offsets.get((site.code, kind), 0)),
                "args": [site.code],
                "options": {"queue": site_queue(site.code), "expires": max(5.0, minutes * 60 * 0.9)},
            }
    entries.update(event_entries(registry))
    entries.update(shipping_entries(registry))
    entries.update(edi_beat_entries(registry))
    entries.update(approval_entries(registry))
    return entries


#: Minutes between approval passes (activities marked done in Odoo, human drafts, owed steps).
APPROVALS_SYNC_MINUTES = 2


def approval_entries(registry: Any) -> dict[str, dict[str, Any]]:
    """One approvals sync per site (siteops.services.approvals), staggered by a minute per site."""
    return {
        f"approvals:{site.code}:sync": {
            "task": "siteops.approvals.sync",
            "schedule": _every(APPROVALS_SYNC_MINUTES, offset=index),
            "args": [site.code],
            "options": {"queue": site_queue(site.code), "expires": APPROVALS_SYNC_MINUTES * 60 * 0.9},
        }
        for index, site in enumerate(registry)
    }


#: Minutes between catch-up passes over Odoo changes that no webhook announced.
CATCH_UP_MINUTES = 10


def event_entries(registry: Any) -> dict[str, dict[str, Any]]:
    """One catch-up per site (siteops.services.events), staggered by a minute per site."""
    return {
        f"events:{site.code}:catch_up": {
            "task": "siteops.events.catch_up",
            "schedule": _every(CATCH_UP_MINUTES, offset=index),
            "args": [site.code],
            "options": {"queue": site_queue(site.code), "expires": CATCH_UP_MINUTES * 60 * 0.9},
        }
        for index, site in enumerate(registry)
    }


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
