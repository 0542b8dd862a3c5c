"""Beat schedules as data: `build_beat_schedule(registry)` -> Celery's beat_schedule dict.

Every entry carries `expires`, so a beat that was down, or a queue that backed up, never
releases a burst of stale copies of the same periodic job.
"""

from __future__ import annotations

from typing import Any

from siteops.queues import PLATFORM_QUEUE

# Lost work must resume within a minute of a worker's death: a heartbeat expires after
# 10 s, and this sweep runs every 10 s: lost work resumes within about 30 s.
RECOVER_LOST_EVERY = 10.0


def build_beat_schedule(registry: Any) -> dict[str, dict[str, Any]]:
    schedule: dict[str, dict[str, Any]] = {
        "recover-lost-work": {
            "task": "siteops.ops.recover_lost",
            "schedule": RECOVER_LOST_EVERY,
            "options": {"queue": PLATFORM_QUEUE, "expires": RECOVER_LOST_EVERY * 4},
        },
    }
    return schedule
