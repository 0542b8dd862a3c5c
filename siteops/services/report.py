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
    approval_cycle_s: float | None = None  # mean request -> decision time; None: nothing decided yet
    approvals_pending: int = 0

    @property
    def open_total(self) -> int:
        return sum(self.open_by_kind.values())


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def collect(codes: list[str], *, days: int = 7, now: dt.datetime | None = None) -> list[SiteStats]:
    from siteops.store import findings as store

    now = now or utcnow()
    stats = {c: SiteStats(site=c, open_by_kind={k: 0 for k in KINDS}) for c in codes}
    ages: dict[str, list[float]] = defaultdict(list)
    lateness: dict[str, list[float]] = defaultdict(list)
    with session() as s:
        for f in s.scalars(select(Finding).where(Finding.status.in_(FindingStatus.ACTIVE))):
            if f.site not in stats:
                continue
            stats[f.site].open_by_kind[f.kind] = stats[f.site].open_by_kind.get(f.kind, 0) + 1
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
    fresh = {(site, kind): when for site, kind, when in store.last_success()}
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
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
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


def _html(stats: list[SiteStats], out: Path) -> Path:
    colors = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f"]
    parts = ["<!doctype html><meta charset=utf-8><title>siteops: sites compared</title>",
             "<style>body{font-family:sans-serif;margin:2em}svg{margin:1em}</style>",
             f"<h1>Sites compared</h1><p>{html.escape(f'{utcnow():%Y-%m-%d %H:%M} UTC')}</p>"]
    for title, values, _stacked in PANELS:
        series = [values(s) for s in stats]
        keys = list(series[0]) if series else []
        peak = max([float(v.get(k, 0)) for v in series for k in keys] + [1e-9])
        bar_h, width = 14, 320
        height = len(stats) * (len(keys) * bar_h + 10) + 30
        svg = [f'<svg width="{width + 160}" height="{height}" role="img"><title>{html.escape(title)}</title>',
               f'<text x="0" y="14" font-weight="bold">{html.escape(title)}</text>']
        y = 26
        for s, v in zip(stats, series, strict=True):
            svg.append(f'<text x="0" y="{y + bar_h}">{html.escape(s.site)}</text>')
            for i, k in enumerate(keys):
                val = float(v.get(k, 0))
                w = int(width * val / peak)
                svg.append(f'<rect x="60" y="{y}" width="{w}" height="{bar_h - 2}" fill="{colors[i % 5]}">'
                           f"<title>{html.escape(k)}: {val:g}</title></rect>")
                svg.append(f'<text x="{64 + w}" y="{y + bar_h - 3}" font-size="11">{html.escape(k)} {val:g}</text>')
                y += bar_h
            y += 10
        svg.append("</svg>")
        parts.append("".join(svg))
    out.write_text("\n".join(parts))
    return out
