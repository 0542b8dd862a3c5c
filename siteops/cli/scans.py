"""The schedule, scans, findings and the sites report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from siteops.cli import (
    app,
    choice,
    err,
    fail,
    findings_app,
    out,
    print_json,
    registry,
    report_app,
    site_code,
    store_ready,
)
from siteops.cli.jobs import enqueue

# --- scans and findings ----------------------------------------------------------------


@app.command()
def schedule(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The effective beat schedule: one entry per site and scan kind, plus housekeeping."""
    from siteops.schedules import build_beat_schedule, describe

    entries = describe(build_beat_schedule(registry()))
    if as_json:
        print_json(entries)
        return
    table = Table(title=f"Beat schedule ({len(entries)} entries)")
    for col in ("name", "task", "args", "queue", "when", "expires (s)"):
        table.add_column(col)
    for e in entries:
        table.add_row(e["name"], e["task"], " ".join(e["args"]), e["queue"], e["when"], f"{e['expires']:g}")
    out.print(table)


@app.command()
def scan(
    kind: Annotated[str, typer.Argument(help="aging_transfers, overdue_receipts, stock_anomalies, aging_backorders")],
    site: Annotated[str, typer.Option(help="Site code")],
    wait: Annotated[bool, typer.Option(help="Wait for the result")] = False,
    timeout: Annotated[float, typer.Option()] = 300.0,
) -> None:
    """A one-off scan: the same task, queue and code path as beat's."""
    from siteops.rules.findings import KINDS

    kind = choice(kind, KINDS, "KIND", "scan kind")
    enqueue(f"siteops.scan.{kind}", site=site_code(site), arg=None, wait=wait, timeout=timeout)


def _findings() -> Any:
    from siteops.store import findings

    store_ready()
    return findings


@findings_app.callback()
def findings_list(
    ctx: typer.Context,
    site: Annotated[str | None, typer.Option()] = None,
    kind: Annotated[str | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option(help="open, acknowledged or resolved")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    sort: Annotated[str, typer.Option(help="age (oldest first) or priority (siteops.rules.priority)")] = "age",
) -> None:
    """Findings, oldest first or by priority (filter by site, kind, status)."""
    if ctx.invoked_subcommand is not None:
        return
    from siteops.rules.findings import KINDS
    from siteops.store.models import FindingStatus

    site = None if site is None else site_code(site)
    kind = None if kind is None else choice(kind, KINDS, "--kind", "scan kind")
    statuses = (FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED, FindingStatus.RESOLVED)
    status = None if status is None else choice(status, statuses, "--status", "status")
    sort = choice(sort, ("age", "priority"), "--sort", "order")
    store = _findings()
    found = store.search(site=site, kind=kind, status=status)
    rows = [store.as_dict(f) for f in found]
    if sort == "priority":
        from siteops.rules.priority import finding_priority, finding_value
        from siteops.store.models import utcnow

        now = utcnow()
        for f, row in zip(found, rows, strict=True):
            row["priority"] = finding_priority(f.severity, f.first_seen, value=finding_value(f.details), now=now).value
        rows.sort(key=lambda r: -r["priority"])
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"Findings ({len(rows)})")
    for col in ("id", "site", "kind", "record", "status", "sev", "first seen", "last seen", "title"):
        table.add_column(col)
    for f in rows:
        table.add_row(str(f["id"]), f["site"], f["kind"], f"{f['model']} {f['record_id']}", f["status"],
                      str(f["severity"]), f["first_seen"][:16], f["last_seen"][:16], f["title"][:70])
    out.print(table)


@findings_app.command("ack")
def findings_ack(
    finding_id: Annotated[int, typer.Argument(metavar="ID")],
    by: Annotated[str, typer.Option(help="Who acknowledges")] = os.environ.get("USER", "operator"),
) -> None:
    """Acknowledge a finding: someone is on it (it will not escalate)."""
    store = _findings()
    finding = store.acknowledge(finding_id, by)
    if finding is None:
        raise fail(f"no finding {finding_id}")
    print_json(store.as_dict(finding))


@report_app.command("sites")
def report_sites(
    out_file: Annotated[Path | None, typer.Option("--out", help="Also write a chart: .png or .html")] = None,
    days: Annotated[int, typer.Option(help="Window for failure and retry rates")] = 7,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Sites side by side: findings by kind, transfer age, receipt lateness, failures, dead letters, freshness."""
    from siteops.rules.findings import KINDS
    from siteops.services.report import collect, fmt_age, rows, write_chart

    reg = registry()
    store_ready()
    stats = collect(list(reg.codes), days=days)
    if as_json:
        print_json(rows(stats))
    else:
        table = Table(title=f"Sites compared (rates over {days} days)")
        for col in ("site", "aging transfers", "overdue receipts", "stock anomalies", "aging backorders",
                    "median transfer age", "median receipt lateness", "failures", "retries", "dead letters",
                    "stalest scan", "top priority", "approval cycle", "approvals pending"):
            table.add_column(col, justify="right")
        for s in stats:
            table.add_row(
                s.site, *(str(s.open_by_kind.get(k, 0)) for k in KINDS),
                "-" if s.median_transfer_age_h is None else f"{s.median_transfer_age_h:g} h",
                "-" if s.median_receipt_late_d is None else f"{s.median_receipt_late_d:g} d",
                f"{100 * s.failure_rate:.1f}%", f"{100 * s.retry_rate:.1f}%", str(s.dead_letters),
                fmt_age(s.stalest_scan_age_s),
                "-" if s.top_finding is None else f"{s.top_priority:g} (#{s.top_finding})",
                "-" if s.approval_cycle_s is None else fmt_age(s.approval_cycle_s), str(s.approvals_pending))
        out.print(table)
    if out_file is not None:
        try:
            written = write_chart(stats, out_file)
        except ValueError as exc:
            raise fail(str(exc)) from None
        err.print(f"chart written to {written}")
