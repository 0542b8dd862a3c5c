"""Time limits every process agrees on (import-light: the policy check reads them).

The visibility timeout must exceed the longest task run plus the longest retry
countdown, or Redis hands a message that is still held (running, or waiting out its
countdown in a worker) to a second worker (celery-here.md §5, scenario C). The policy
registry checks `[policy.retry] backoff_cap_seconds` against them when it loads, so every
command refuses a cap that breaks this, the same way.
"""

from __future__ import annotations

# Hard limit on one task run. Connector calls carry their own shorter timeouts; this is
# the backstop that kills a pool process stuck in C code or a hung socket.
TASK_TIME_LIMIT = 15 * 60
# SoftTimeLimitExceeded is raised first, leaving a minute to record the outcome; the
# base class treats it as retryable.
TASK_SOFT_TIME_LIMIT = TASK_TIME_LIMIT - 60
# Redis hands an unacknowledged message to another worker after this many seconds.
# Lost work is recovered much sooner by siteops itself (siteops.worker.recovery), so
# nothing depends on it.
VISIBILITY_TIMEOUT = 2 * 60 * 60
#: The largest retry countdown the policy may ask for.
MAX_BACKOFF_CAP = VISIBILITY_TIMEOUT - TASK_TIME_LIMIT
