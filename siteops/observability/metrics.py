"""Prometheus metrics of the task layer.

With the prefork pool the increments happen in the pool children, so workers run with
`PROMETHEUS_MULTIPROC_DIR` set before prometheus_client is imported (`siteops worker`
does this) and the exporter sums the per-process files.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

TASK_RUNS = Counter(
    "siteops_task_runs_total",
    "Task executions by outcome (succeeded, retried, dead_lettered, failed, skipped).",
    ["task", "site", "outcome"],
)
TASK_DURATION = Histogram(
    "siteops_task_duration_seconds",
    "Wall time of one task execution.",
    ["task", "site"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
TASK_RETRIES = Counter(
    "siteops_task_retries_total",
    "Retries scheduled, by task, site and reason (retryable, rate_limited).",
    ["task", "site", "reason"],
)
DEAD_LETTERS = Counter(
    "siteops_dead_letters_created_total",
    "Dead letters written, by task, site and reason.",
    ["task", "site", "reason"],
)
RECOVERED = Counter(
    "siteops_lost_messages_recovered_total",
    "Messages of dead workers put back on their queue by lost-work recovery.",
    ["queue"],
)
SCAN_DURATION = Histogram(
    "siteops_scan_duration_seconds", "Wall time of one complete scan.", ["site", "kind"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
SCAN_RECORDS = Counter("siteops_scan_records_read_total", "Records read by scans.", ["site", "kind"])
SCAN_FAILURES = Counter("siteops_scan_failures_total", "Scans that failed (and decided nothing).", ["site", "kind"])
SCAN_LAST_SUCCESS = Gauge(
    "siteops_scan_last_success_worker_timestamp_seconds",
    "When this process last completed a scan (the exporter reports the store's view as "
    "siteops_scan_last_success_timestamp_seconds).", ["site", "kind"], multiprocess_mode="max",
)
ALERTS = Counter("siteops_alerts_sent_total", "Alerts delivered, by channel and event.", ["site", "channel", "event"])
HOUSEKEEPING_RUNS = Counter(
    "siteops_housekeeping_runs_total",
    "Housekeeping job runs in the platform worker, by job and outcome (idle, acted, error).",
    ["job", "outcome"],
)
HOUSEKEEPING_ACTIONS = Counter(
    "siteops_housekeeping_actions_total",
    "Things housekeeping jobs acted on (e.g. lost messages put back), by job.",
    ["job"],
)
APPROVAL_DECISIONS = Counter(
    "siteops_approval_decisions_total",
    "Approval decisions by channel (cli, odoo) and outcome (tier_approved, approved, rejected, refused_<why>).",
    ["via", "outcome"],
)
