"""The metric names the exporter and Flower serve, and a PromQL name extractor.

Rules and dashboard panels may use only these names: a typo or a renamed metric would
otherwise give an empty panel or an alert that can never fire, silently.
"""

from __future__ import annotations

import re

GAUGES_AND_COUNTERS = {
    "siteops_queue_messages",
    "siteops_queue_oldest_message_age_seconds",
    "siteops_queue_unacked_messages",
    "siteops_workers_alive",
    "siteops_dead_letters",
    "siteops_findings_open",
    "siteops_scan_last_success_timestamp_seconds",
    "siteops_scan_failures_total",
    "siteops_scan_records_read_total",
    "siteops_beat_last_tick_timestamp_seconds",
    "siteops_task_runs_total",
    "siteops_task_retries_total",
    "siteops_dead_letters_created_total",
    "siteops_connector_calls_total",
    "siteops_carrier_calls_total",
    "siteops_carrier_circuit_state",
    "siteops_carrier_rate_limit_waits_total",
    "siteops_carrier_rate_limit_wait_seconds_total",
    "siteops_carrier_labels_bought_total",
    "siteops_carrier_tracking_updates_total",
    "siteops_carrier_webhooks_total",
    # siteops.observability.exporter._approvals (from the approvals store)
    "siteops_approvals_pending",
    "siteops_approvals_oldest_pending_age_seconds",
    "siteops_approvals_escalations",
    "siteops_approvals_sod_refusals",
    "siteops_approvals_cycle_seconds",
    "siteops_approval_decisions_total",
    "flower_worker_online",
    "flower_events_total",
}
HISTOGRAMS = {
    "siteops_scan_duration_seconds",
    "siteops_task_duration_seconds",
    "siteops_connector_call_duration_seconds",
    "siteops_carrier_call_duration_seconds",
    "flower_task_runtime_seconds",
}
KNOWN_METRICS = GAUGES_AND_COUNTERS | {h + s for h in HISTOGRAMS for s in ("_bucket", "_sum", "_count")}

# Metrics without a site label: everything else of siteops is per site.
SITELESS = {"siteops_beat_last_tick_timestamp_seconds", "siteops_carrier_circuit_state",
            "siteops_carrier_webhooks_total"}
SITE_METRICS = {m for m in KNOWN_METRICS if m.startswith("siteops_") and m not in SITELESS}

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
             "offset", "bool", "atan2", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (Grafana's $variables allowed)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)  # string literals
    s = re.sub(r"\$\{[^}]*\}|\$\w+", " ", s)  # Grafana variables, before `{...}` goes
    s = re.sub(r"\{[^}]*\}", " ", s)  # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)  # ranges and subqueries
    s = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)  # label lists
    s = re.sub(r"\boffset\s+-?\w+", " ", s)
    names = set()
    for m in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?", s):
        word, call = m.groups()
        if call or word.lower() in _KEYWORDS:
            continue  # a function or an operator
        names.add(word)
    return names


def selectors(expr: str, metric: str) -> list[str]:
    """The label matchers (text inside braces, "" when none) of each use of `metric`."""
    return [m.group(1) or "" for m in re.finditer(rf"(?<![\w:]){re.escape(metric)}(?![\w:])(?:\s*\{{([^}}]*)\}})?",
                                                  expr)]
