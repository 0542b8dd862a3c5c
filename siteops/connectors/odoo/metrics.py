"""Prometheus metrics of connector calls (the exporter sums them across worker processes)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

CALLS = Counter(
    "siteops_connector_calls_total",
    "Calls to external systems by system, site, method (model.method) and outcome "
    "(ok, retryable, rate_limited, permanent, auth).",
    ["system", "site", "method", "outcome"],
)
CALL_DURATION = Histogram(
    "siteops_connector_call_duration_seconds",
    "Wall time of one call to an external system, retries excluded.",
    ["system", "site", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
