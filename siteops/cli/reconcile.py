"""`siteops reconcile KIND` (start a reconciliation job per site, optionally wait with a
progress bar) and `siteops jobs` (past reconciliation runs, one report)."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from siteops.cli import app, broker_ready, celery_app, err, fail, out, print_json, registry, site_code, store_ready

jobs_app = typer.Typer(help="Reconciliation jobs: past runs with their outcomes, one report.",
                       invoke_without_command=True)
app.add_typer(jobs_app, name="jobs")
TASK = "siteops.reconcile.run"


def _kinds() -> tuple[str, ...]:
    from siteops.services.reconcile import KINDS

    return tuple(KINDS)


def _new_job_id(kind: str, site: str) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    return f"{kind}-{site}-{stamp}-{uuid.uuid4().hex[:6]}"


@app.command("reconcile")
def reconcile(
    kind: Annotated[str, typer.Argument(help="shipments, po-acks, stock or findings")],
    site: Annotated[str | None, typer.Option(help="Site code")] = None,
    all_sites: Annotated[bool, typer.Option("--all-sites", help="One job per site (one site's failure "
                                                                "does not stop the others)")] = False,
    since: Annotated[str | None, typer.Option(help="Only records from this date (YYYY-MM-DD[THH:MM], UTC)")] = None,
    until: Annotated[str | None, typer.Option(help="Only records before this date")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would change (the default)")] = False,
    apply: Annotated[bool, typer.Option("--apply", help="Make the changes the dry run reports")] = False,
    wait: Annotated[bool, typer.Option(help="Wait, with a progress bar on stderr, and show the report")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="stdout carries only the final report (JSON)")] = False,
    job: Annotated[str | None, typer.Option("--job", help="Resume this job id (it continues from its "
                                                          "checkpoint; a finished job returns its report)")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Records per batch (checkpoint interval)",
                                                   min=1, max=10000)] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait")] = 1800.0,
) -> None:
    """Compare Odoo with the carrier, EDI or the store for a site; report the drift, or fix it with --apply."""
    from siteops.services.reconcile import parse_date

    kinds = _kinds()
    if kind not in kinds:
        raise fail(f"unknown reconcile kind {kind!r}; known: {', '.join(kinds)}")
    if dry_run and apply:
        raise fail("--dry-run and --apply exclude each other (a dry run is the default)")
    if (site is None) == (not all_sites):
        raise fail("give --site CODE or --all-sites")
    if job is not None and all_sites:
        raise fail("--job resumes one job: give it with --site")
    try:
        since_v, until_v = parse_date(since, "--since"), parse_date(until, "--until")
    except ValueError as exc:
        raise fail(str(exc)) from None
    if since_v and until_v and since_v >= until_v:
        raise fail(f"--since {since} is not before --until {until}")
    codes = list(registry().codes) if all_sites else [site_code(site or "")]
    store_ready()
    celery = celery_app()
    broker_ready()
    from siteops.store import reconcile as jobs

    started: list[tuple[str, str, Any]] = []
    for code in codes:
        job_id = job or _new_job_id(kind, code)
        held = jobs.get(job_id)
        if held is not None and (held.kind, held.site, held.dry_run) != (kind, code, not apply):
            raise fail(f"--job {job_id} is {held.kind} on {held.site} ({'dry run' if held.dry_run else 'real run'});"
                       f" resume it with the same kind, site and --dry-run/--apply")
        kwargs = {"batch_size": batch_size} if batch_size else {}
        # Recorded before it is enqueued (`siteops jobs` lists it while it waits for a worker).
        task_id = str(uuid.uuid4())
        jobs.register(job_id=job_id, kind=kind, site=code, dry_run=not apply, since=since_v, until=until_v,
                      task_id=task_id)
        result = celery.tasks[TASK].apply_async(args=[code, kind, job_id, since_v, until_v, apply], kwargs=kwargs,
                                                task_id=task_id)
        started.append((code, job_id, result))
        if not as_json:
            typer.echo(job_id)
    if not wait:
        if as_json:
            print_json({"jobs": [{"site": c, "job_id": j, "task_id": r.id} for c, j, r in started]})
        return
    reports, failed = _wait(started, timeout)
    if as_json:
        print_json(reports[0] if len(reports) == 1 and not failed else {
            "kind": kind, "dry_run": not apply, "reports": reports, "failed": failed})
    else:
        for report in reports:
            show_report(report)
        for f in failed:
            err.print(f"[red]{escape(f['site'])}: job {escape(f['job_id'])} failed:[/] {escape(f['error'])}",
                      highlight=False)
    if failed:
        raise typer.Exit(1)


def _wait(started: list[tuple[str, str, Any]], timeout: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Poll each job's task (PROGRESS states) into a progress bar on stderr until all are done."""
    reports: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=False) as bar:
        tasks = {job_id: bar.add_task(f"{code} {job_id}", total=None) for code, job_id, _ in started}
        totals: dict[str, int] = {}
        pending = list(started)
        while pending:
            for item in list(pending):
                code, job_id, result = item
                state = result.state
                if state == "PROGRESS" and isinstance(result.info, dict):
                    totals[job_id] = int(result.info.get("total") or 0)
                    bar.update(tasks[job_id], completed=int(result.info.get("done") or 0),
                               total=totals[job_id] or None)
                elif result.ready():
                    pending.remove(item)
                    value = result.get(propagate=False)
                    if result.successful() and isinstance(value, dict) and "skipped" not in value:
                        total = totals.get(job_id) or 1
                        bar.update(tasks[job_id], completed=total, total=total)
                        reports.append(value)
                    else:
                        why = value.get("skipped") if isinstance(value, dict) else f"{type(value).__name__}: {value}"
                        failed.append({"site": code, "job_id": job_id, "error": str(why)})
            if pending and time.monotonic() > deadline:
                for code, job_id, _ in pending:
                    failed.append({"site": code, "job_id": job_id, "error": f"no result within {timeout:.0f}s; "
                                   f"still running or queued (siteops jobs show {job_id})"})
                break
            if pending:
                time.sleep(0.2)
    return reports, failed


def show_report(report: dict[str, Any]) -> None:
    mode = "dry run" if report.get("dry_run") else "real run"
    table = Table(title=f"reconcile {report.get('kind')} {report.get('site')} ({mode}) job {report.get('job_id')}")
    for col in ("model", "record", "change", "outcome", "detail"):
        table.add_column(col)
    for c in report.get("changes") or []:
        detail = ", ".join(f"{k}={v}" for k, v in (c.get("detail") or {}).items() if v not in (None, ""))
        table.add_row(c["model"], str(c["record"]), c["change"], c.get("outcome", ""), escape(detail[:90]))
    out.print(table)
    counts = report.get("counts") or {}
    out.print("counts: " + (", ".join(f"{k} {v}" for k, v in counts.items()) if counts else "nothing to do"))


@jobs_app.callback()
def jobs_list(
    ctx: typer.Context,
    site: Annotated[str | None, typer.Option(help="Only this site")] = None,
    kind: Annotated[str | None, typer.Option(help="Only this kind")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Past reconciliation runs, newest first, with their outcomes."""
    if ctx.invoked_subcommand is not None:
        return
    if site is not None:
        site = site_code(site)
    if kind is not None and kind not in _kinds():
        raise fail(f"--kind: unknown reconcile kind {kind!r}; known: {', '.join(_kinds())}")
    store_ready()
    from siteops.store import reconcile as jobs

    rows = [jobs.as_dict(j) for j in jobs.search(site=site, kind=kind, limit=limit)]
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"Reconciliation jobs ({len(rows)})")
    for col in ("job", "kind", "site", "mode", "status", "progress", "runs", "outcomes", "finished"):
        table.add_column(col)
    for r in rows:
        outcomes = ", ".join(f"{k} {v}" for k, v in r["counts"].items()) or "-"
        table.add_row(r["job_id"], r["kind"], r["site"], "dry run" if r["dry_run"] else "apply", r["status"],
                      f"{r['done']}/{r['total']}", str(r["runs"]), outcomes[:80], (r["finished_at"] or "")[:19])
    out.print(table)


@jobs_app.command("show")
def jobs_show(job_id: Annotated[str, typer.Argument(metavar="ID")],
              as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One job's report (with the changes it made, as audited)."""
    store_ready()
    from siteops.store import reconcile as jobs

    job = jobs.get(job_id)
    if job is None:
        raise fail(f"no reconciliation job {job_id!r} (siteops jobs lists them)")
    data = jobs.as_dict(job) | {"report": job.report}
    if as_json:
        print_json(data)
        return
    out.print(f"job {job.id}: {job.kind} on {job.site}, {'dry run' if job.dry_run else 'real run'}, {job.status}, "
              f"{job.done}/{job.total} in {job.batches} batches, {job.runs} run(s)"
              + (f"; error: {escape(job.error)}" if job.error else ""))
    if job.report:
        show_report(dict(job.report))
