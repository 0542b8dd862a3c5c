"""The daily retention job of the platform worker (see store/upkeep.py for the policy)."""

from __future__ import annotations

import logging
from typing import Any

from siteops.worker.housekeeping import housekeeping_job

log = logging.getLogger(__name__)
DAY = 24 * 3600.0


@housekeeping_job("retention", every=DAY)
def retention(app: Any) -> int:
    """Delete audit rows and scan runs older than the policy's `retention_days`."""
    from siteops.config.sites import get_registry
    from siteops.store.upkeep import purge, retention_days

    days = retention_days(get_registry())
    deleted = purge(days)
    total = sum(deleted.values())
    if total:  # record only when it acts
        log.info("retention: deleted %d job runs and %d scan runs older than %d days",
                 deleted["job_runs"], deleted["scan_runs"], days)
    return total
