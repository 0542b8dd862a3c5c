"""Beat-driven scans, one task per scan kind: `siteops.scan.<kind>(site)`.

Thin on purpose: the tasks are generated from `siteops.services.scans.READERS` (where a
kind is declared), and each one runs `services.scans.run`: alone for its (site, kind),
read everything or decide nothing, findings and their owed alerts in one commit, the
alerts published after it.
"""

from __future__ import annotations

from typing import Any

from siteops.services import scans
from siteops.tasks.base import SiteopsTask, siteops_task


def _declare(kind: str) -> SiteopsTask:
    def scan(self: SiteopsTask, site: str) -> dict[str, Any]:
        return scans.run(site, kind, task_id=self.request.id)

    scan.__name__ = scan.__qualname__ = f"scan_{kind}"
    scan.__doc__ = f"Scan one site for {kind.replace('_', ' ')} (see siteops.services.scans.{kind})."
    scan.__module__ = __name__
    return siteops_task(f"siteops.scan.{kind}", idempotent=True)(scan)


SCAN_TASKS: dict[str, SiteopsTask] = {kind: _declare(kind) for kind in scans.READERS}
