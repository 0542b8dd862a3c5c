"""The PromQL name extractor the rule and dashboard checks rely on."""

from __future__ import annotations

import pytest

from tests.deploy.promql import metric_names, selectors


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("time() - siteops_scan_last_success_timestamp_seconds > 2 * 3600",
         {"siteops_scan_last_success_timestamp_seconds"}),
        ('histogram_quantile(0.95, sum by (le, site) (rate(siteops_task_duration_seconds_bucket'
         '{site=~"$site"}[$__rate_interval])))', {"siteops_task_duration_seconds_bucket"}),
        ("sum by (site) (x) > (sum by (site) (x offset 30m) or sum by (site) (x) * 0)", {"x"}),
        ('sum(rate(a_total{outcome!="ok", method="by(site)"}[5m])) by (site) / on (site) group_left(kind) b',
         {"a_total", "b"}),
        ('up{job="siteops"} == 0 or absent(up{job="siteops"})', {"up"}),
        ("max_over_time(w[1d]) unless w", {"w"}),
        ("vector(1e3) + 2.5", set()),
    ],
)
def test_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_selectors_of_each_use() -> None:
    expr = 'sum(siteops_dead_letters{site=~"$site"}) - siteops_dead_letters - siteops_dead_letters_created_total{a="b"}'
    assert selectors(expr, "siteops_dead_letters") == ['site=~"$site"', ""]
