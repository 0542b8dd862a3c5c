"""`siteops report sites`: the sites side by side, to see where execution drifts.

Per site: open findings by kind, the median age of aging transfers, the median lateness
of overdue receipts, failure and retry rates of the last days' runs, dead letters
waiting, and how fresh the scans are. A terminal table, and a chart (PNG or HTML).
"""

from __future__ import annotations

import datetime as dt
import html
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from siteops.rules.findings import KINDS
from siteops.rules.priority import finding_priority, finding_value
from siteops.store.db import session
from siteops.store.models import DeadLetter, Finding, FindingStatus, JobRun, RunState, utcnow

FAILED_STATES = (RunState.FAILED, RunState.DEAD_LETTERED, RunState.LOST)


@dataclass
class SiteStats:
    site: str
    open_by_kind: dict[str, int] = field(default_factory=dict)
    median_transfer_age_h: float | None = None
    median_receipt_late_d: float | None = None
    runs: int = 0
    failure_rate: float = 0.0
    retry_rate: float = 0.0
    dead_letters: int = 0
    stalest_scan_age_s: float | None = None  # None: a scan kind never completed
    #: The open finding to look at first (siteops.rules.priority: severity, age, value).
    top_priority: float = 0.0
    top_finding: int | None = None
    approval_cycle_s: float | None = None  # mean request -> decision time; None: nothing decided yet
    approvals_pending: int = 0

    @property
    def open_total(self) -> int:
        return sum(self.open_by_kind.values())


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def collect(codes: list[str], *, days: int = 7, now: dt.datetime | None = None) -> list[SiteStats]:
    from siteops.store import upkeep

    now = now or utcnow()
    stats = {c: SiteStats(site=c, open_by_kind={k: 0 for k in KINDS}) for c in codes}
    ages: dict[str, list[float]] = defaultdict(list)
    lateness: dict[str, list[float]] = defaultdict(list)
    with session() as s:
        for f in s.scalars(select(Finding).where(Finding.status.in_(FindingStatus.ACTIVE))):
            if f.site not in stats:
                continue
            stats[f.site].open_by_kind[f.kind] = stats[f.site].open_by_kind.get(f.kind, 0) + 1
            score = finding_priority(f.severity, f.first_seen, value=finding_value(f.details), now=now).value
            if score > stats[f.site].top_priority:
                stats[f.site].top_priority, stats[f.site].top_finding = score, f.id
            if f.kind == "aging_transfers" and "age_hours" in f.details:
                ages[f.site].append(float(f.details["age_hours"]))
            if f.kind == "overdue_receipts" and "days_overdue" in f.details:
                lateness[f.site].append(float(f.details["days_overdue"]))
        since = now - dt.timedelta(days=days)
        runs: Counter[tuple[str, str]] = Counter()
        for site, state, n in s.execute(select(JobRun.site, JobRun.state, func.count())
                                        .where(JobRun.started_at >= since).group_by(JobRun.site, JobRun.state)):
            runs[(site or "", state)] += n
        for site, n in s.execute(select(DeadLetter.site, func.count()).where(DeadLetter.replayed_at.is_(None))
                                 .group_by(DeadLetter.site)):
            if site in stats:
                stats[site].dead_letters = int(n)
    fresh = {(site, kind): when for site, kind, when in upkeep.last_success()}
    from siteops.store import approvals

    numbers = approvals.stats(now)
    for code, seconds in numbers["cycle_seconds"].items():
        if code in stats:
            stats[code].approval_cycle_s = round(seconds, 1)
    for row in numbers["pending"]:
        if row["site"] in stats:
            stats[row["site"]].approvals_pending += row["count"]
    for code, st in stats.items():
        st.median_transfer_age_h = _median(ages[code])
        st.median_receipt_late_d = _median(lateness[code])
        total = sum(n for (site, _), n in runs.items() if site == code)
        st.runs = total
        if total:
            st.failure_rate = sum(runs[(code, s)] for s in FAILED_STATES) / total
            st.retry_rate = runs[(code, RunState.RETRYING)] / total
        whens = [fresh.get((code, kind)) for kind in KINDS]
        st.stalest_scan_age_s = None if any(w is None for w in whens) else max(
            (now - w).total_seconds() for w in whens if w is not None)
    return list(stats.values())


def fmt_age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def rows(stats: list[SiteStats]) -> list[dict[str, Any]]:
    return [{
        "site": s.site, **{f"open_{k}": n for k, n in s.open_by_kind.items()}, "open_total": s.open_total,
        "median_transfer_age_hours": s.median_transfer_age_h, "median_receipt_days_late": s.median_receipt_late_d,
        "runs": s.runs, "failure_rate": round(s.failure_rate, 4), "retry_rate": round(s.retry_rate, 4),
        "dead_letters": s.dead_letters, "stalest_scan_age_seconds": s.stalest_scan_age_s,
        "top_priority": s.top_priority, "top_finding": s.top_finding,
        "approval_cycle_seconds": s.approval_cycle_s, "approvals_pending": s.approvals_pending,
    } for s in stats]


def write_chart(stats: list[SiteStats], out: Path) -> Path:
    if out.suffix.lower() == ".png":
        return _png(stats, out)
    if out.suffix.lower() in (".html", ".htm"):
        return _html(stats, out)
    raise ValueError(f"--out {out}: use a .png or .html file")


PANELS = [
    ("Open findings by kind", lambda s: s.open_by_kind, True),
    ("Median aging-transfer age (h)", lambda s: {"hours": s.median_transfer_age_h or 0}, False),
    ("Median receipt lateness (days)", lambda s: {"days": s.median_receipt_late_d or 0}, False),
    ("Failure and retry rate (%)", lambda s: {"failures": 100 * s.failure_rate, "retries": 100 * s.retry_rate}, False),
    ("Dead letters waiting", lambda s: {"dead letters": s.dead_letters}, False),
    ("Stalest scan (minutes)", lambda s: {"minutes": (s.stalest_scan_age_s or 0) / 60}, False),
    # The drift the mission is about: how long each site's approvers take, and what waits on them.
    ("Approval cycle time (h)", lambda s: {"hours": (s.approval_cycle_s or 0) / 3600}, False),
    ("Approvals pending", lambda s: {"pending": s.approvals_pending}, False),
]


def _png(stats: list[SiteStats], out: Path) -> Path:
    try:
        import matplotlib
    except ImportError:  # an extra: production images need not carry it
        raise SystemExit("report.png needs matplotlib: pip install 'siteops[demo]', or use --out report.html") \
            from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sites = [s.site for s in stats]
    fig, axes = plt.subplots(2, 4, figsize=(19, 8))
    for ax, (title, values, stacked) in zip(axes.flat, PANELS, strict=True):
        series = [values(s) for s in stats]
        keys = list(series[0]) if series else []
        bottom = [0.0] * len(sites)
        for i, key in enumerate(keys):
            heights = [float(v.get(key, 0)) for v in series]
            if stacked:
                ax.bar(sites, heights, bottom=bottom, label=key)
                bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
            else:
                width = 0.8 / len(keys)
                ax.bar([x + i * width for x in range(len(sites))], heights, width=width, label=key)
                ax.set_xticks([x + 0.4 - width / 2 for x in range(len(sites))], sites)
        ax.set_title(title)
        if len(keys) > 1:
            ax.legend(fontsize=7)
    fig.suptitle(f"siteops: sites compared ({utcnow():%Y-%m-%d %H:%M} UTC)")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


# Tableau 10: distinct for up to ten series (the finding kinds of scans, carriers, EDI and triage).
COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
          "#bab0ac"]


def fmt_value(value: float) -> str:
    """Numbers as a person reads them: 22.2, 3, 0.4 (never 22.2222)."""
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.1f}" if abs(value) >= 1 else f"{value:.2g}"


def _panel_svg(title: str, stats: list[SiteStats], series: list[dict[str, Any]], keys: list[str],
               stacked: bool) -> str:
    """One chart: a row per site, a bar per key (stacked for the kinds of findings)."""
    label_w, bar_w, bar_h, gap = 56, 250, 16, 8
    per_site = bar_h if stacked else bar_h * len(keys)
    height = len(stats) * (per_site + gap) + gap
    totals = [sum(float(v.get(k, 0)) for k in keys) for v in series] if stacked else \
        [float(v.get(k, 0)) for v in series for k in keys]
    peak = max([*totals, 1e-9])
    svg = [f'<svg viewBox="0 0 {label_w + bar_w + 70} {height}" width="100%" role="img" '
           f'aria-label="{html.escape(title)}">']
    y = gap
    for s, v in zip(stats, series, strict=True):
        svg.append(f'<text x="0" y="{y + per_site / 2 + 4}" class="site">{html.escape(s.site)}</text>')
        x = float(label_w)
        for i, k in enumerate(keys):
            val = float(v.get(k, 0))
            w = bar_w * val / peak
            top = y if stacked else y + i * bar_h
            svg.append(f'<rect x="{x:.1f}" y="{top}" width="{w:.1f}" height="{bar_h - 3}" rx="2" '
                       f'fill="{COLORS[i % len(COLORS)]}"><title>{html.escape(s.site)} {html.escape(k)}: '
                       f"{fmt_value(val)}</title></rect>")
            if stacked:
                x += w
            else:
                svg.append(f'<text x="{label_w + w + 4:.1f}" y="{top + bar_h - 5}" class="value">'
                           f"{fmt_value(val)}</text>")
        if stacked:
            total = sum(float(v.get(k, 0)) for k in keys)
            svg.append(f'<text x="{x + 4:.1f}" y="{y + bar_h - 5}" class="value">{fmt_value(total)}</text>')
        y += per_site + gap
    svg.append("</svg>")
    return "".join(svg)


def _html(stats: list[SiteStats], out: Path) -> Path:
    """A grid of panels (3 across on a wide screen), each with its legend and rounded values."""
    parts = [
        "<!doctype html><meta charset=utf-8><title>siteops: sites compared</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}"
        "h1{margin:0 0 .2em;font-size:1.4em}.when{color:#666;margin:0 0 1em}"
        ".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:1em}"
        ".panel{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.8em 1em}"
        ".panel h2{font-size:1em;margin:0 0 .4em}.legend{display:flex;flex-wrap:wrap;gap:.3em 1em;"
        "font-size:.85em;margin:0 0 .4em;padding:0;list-style:none}.legend span{display:inline-block;"
        "width:.8em;height:.8em;border-radius:2px;margin-right:.3em;vertical-align:-.05em}"
        "svg .site{font-size:12px;font-weight:600}svg .value{font-size:11px;fill:#444}</style>",
        "<h1>Sites compared</h1>",
        f"<p class=when>{html.escape(f'{utcnow():%Y-%m-%d %H:%M} UTC')} &middot; {len(stats)} sites</p>",
        "<div class=grid>",
    ]
    for title, values, stacked in PANELS:
        series = [values(s) for s in stats]
        keys = list(series[0]) if series else []
        legend = "".join(f'<li><span style="background:{COLORS[i % len(COLORS)]}"></span>{html.escape(k)}</li>'
                         for i, k in enumerate(keys))
        parts.append(f"<section class=panel><h2>{html.escape(title)}</h2><ul class=legend>{legend}</ul>"
                     f"{_panel_svg(title, stats, series, keys, stacked)}</section>")
    parts.append("</div>")
    out.write_text("\n".join(parts))
    return out
