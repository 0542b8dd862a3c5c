"""Prometheus metrics of carrier calls, the shared guard (rate limit, circuit) and labels."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CARRIER_CALLS = Counter(
    "siteops_carrier_calls_total",
    "Calls to a carrier API by carrier account, site, operation and outcome "
    "(ok, retryable, rate_limited, permanent, auth, not_found, circuit_open).",
    ["carrier", "site", "operation", "outcome"],
)
CARRIER_LATENCY = Histogram(
    "siteops_carrier_call_duration_seconds",
    "Wall time of one carrier API call (no retries inside: the SDK's own are switched off).",
    ["carrier", "site", "operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CIRCUIT_STATE = Gauge(
    "siteops_carrier_circuit_state",
    "The shared circuit of a carrier account as last seen by a worker: 0 closed, 1 half-open, 2 open.",
    ["carrier"], multiprocess_mode="mostrecent",
)
RATE_LIMIT_WAITS = Counter(
    "siteops_carrier_rate_limit_waits_total",
    "Calls that had to wait for a slot of the account's shared rate limit (waited: slept in process; "
    "deferred: the task retries later).",
    ["carrier", "site", "kind"],
)
RATE_LIMIT_WAIT_SECONDS = Counter(
    "siteops_carrier_rate_limit_wait_seconds_total", "Seconds slept waiting for rate-limit slots.", ["carrier", "site"],
)
LABELS_BOUGHT = Counter(
    "siteops_carrier_labels_bought_total", "Labels bought (a buy that succeeded at the carrier).",
    ["carrier", "site"],
)
TRACKING_UPDATES = Counter(
    "siteops_carrier_tracking_updates_total",
    "Tracking status changes recorded, by neutral status and source (poll, webhook).",
    ["carrier", "site", "status", "source"],
)
WEBHOOKS = Counter(
    "siteops_carrier_webhooks_total",
    "Tracking webhooks received, by outcome (accepted, bad_signature, too_large, malformed, unknown, duplicate).",
    ["carrier", "outcome"],
)
