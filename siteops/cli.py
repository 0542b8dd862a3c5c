"""The `siteops` command: sites, enqueue, dead letters, and the processes of the platform."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from siteops.queues import PLATFORM_QUEUE, site_queue
from siteops.sites import PolicyError, Registry, load_registry, plain

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="siteops: scheduled scans and connector jobs for every site, on Celery.")
dlq_app = typer.Typer(no_args_is_help=True, help="The dead-letter store: list, show, replay.")
db_app = typer.Typer(no_args_is_help=True, help="The store's schema.")
app.add_typer(dlq_app, name="dlq")
app.add_typer(db_app, name="db")
findings_app = typer.Typer(help="Findings raised by the scans: list, acknowledge.", invoke_without_command=True)
app.add_typer(findings_app, name="findings")
sim_app = typer.Typer(no_args_is_help=True, help="Simulators for demos and tests (Odoo, webhook receiver).")
app.add_typer(sim_app, name="sim")
report_app = typer.Typer(no_args_is_help=True, help="Reports for comparing sites.")
app.add_typer(report_app, name="report")
# Piped output (logs, CI) gets a wide console instead of rich's 80-column default.
out = Console() if sys.stdout.isatty() else Console(width=160)
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def registry() -> Registry:
    try:
        return load_registry()
    except PolicyError as exc:
        raise fail(str(exc)) from None


def celery_app() -> Any:
    try:
        from siteops.celery_app import app as celery

        celery.loader.import_default_modules()
        return celery
    except PolicyError as exc:
        raise fail(str(exc)) from None


def _flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


# --- sites ---------------------------------------------------------------------------


@app.command()
def sites(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Each site, its queue and its effective parameters (policy + site overrides)."""
    reg = registry()
    if as_json:
        _json([s.as_dict() for s in reg])
        return
    table = Table(title=f"Sites ({reg.path})")
    for col in ("code", "name", "queue", "odoo warehouse", "responsible"):
        table.add_column(col)
    for s in reg:
        table.add_row(s.code, s.name, s.queue, s.odoo_warehouse, ", ".join(s.responsible))
    out.print(table)
    params = Table(title="Effective parameters")
    params.add_column("parameter")
    for s in reg:
        params.add_column(s.code, justify="right")
    flat = {s.code: _flatten(s.as_dict()["params"]) for s in reg}
    defaults = _flatten(plain(reg.defaults))
    for key in defaults:
        cells = []
        for s in reg:
            top = key.split(".")[0]
            mark = "*" if top in s.overrides and flat[s.code][key] != defaults[key] else ""
            cells.append(f"{mark}{flat[s.code][key]}")
        params.add_row(key, *cells)
    out.print(params)
    out.print("* the site's own value; the rest is enterprise policy")


# --- enqueue -------------------------------------------------------------------------


def parse_args(pairs: list[str]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise fail(f"--arg {pair!r}: expected key=value")
        try:
            kwargs[key] = json.loads(raw)
        except ValueError:
            kwargs[key] = raw
    return kwargs


@app.command()
def enqueue(
    task: Annotated[str, typer.Argument(help="Task name, e.g. siteops.ops.ping")],
    site: Annotated[str | None, typer.Option(help="Site code (first argument of site-bound tasks)")] = None,
    arg: Annotated[list[str] | None, typer.Option("--arg", help="key=value (JSON values allowed)")] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the result and print it as JSON")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait")] = 60.0,
) -> None:
    """Enqueue a task on its site's queue; print the task id (and the result with --wait)."""
    celery = celery_app()
    known = sorted(name for name in celery.tasks if name.startswith("siteops."))
    if task not in celery.tasks or not task.startswith("siteops."):
        raise fail(f"unknown task {task!r}; known tasks: {', '.join(known)}")
    t = celery.tasks[task]
    kwargs = parse_args(arg or [])
    args: list[Any] = []
    if getattr(t, "site_bound", False):
        if site is None:
            raise fail(f"{task} is site-bound: --site is required (known sites: {', '.join(registry().codes)})")
        args.append(site)
    elif site is not None:
        raise fail(f"{task} runs on the {PLATFORM_QUEUE} queue and takes no --site")
    try:
        result = t.apply_async(args=args, kwargs=kwargs)
    except (ValueError, KeyError) as exc:
        raise fail(str(exc)) from None
    typer.echo(result.id)
    if not wait:
        return
    try:
        value = result.get(timeout=timeout, propagate=False)
    except Exception as exc:  # celery raises its TimeoutError here
        raise fail(f"no result within {timeout:.0f}s ({type(exc).__name__}); task {result.id} "
                   f"may still be waiting for a worker on {site_queue(site) if site else PLATFORM_QUEUE}",
                   code=3) from None
    if result.failed():
        raise fail(f"task {result.id} failed: {type(value).__name__}: {value}", code=1)
    _json(value)


# --- dead letters --------------------------------------------------------------------


def _store() -> Any:
    from siteops.store import audit, upgrade

    upgrade()
    return audit


@dlq_app.command("list")
def dlq_list(
    site: Annotated[str | None, typer.Option(help="Only this site")] = None,
    include_replayed: Annotated[bool, typer.Option("--all", help="Include replayed ones")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Dead letters waiting for a decision (oldest first)."""
    audit = _store()
    rows = audit.list_dead_letters(site=site, include_replayed=include_replayed)
    data = [_dead_dict(d) for d in rows]
    if as_json:
        _json(data)
        return
    table = Table(title=f"Dead letters ({len(rows)})")
    for col in ("id", "created", "site", "task", "key", "reason", "error", "attempts", "replayed"):
        table.add_column(col)
    for d in data:
        table.add_row(str(d["id"]), d["created_at"][:19], d["site"] or "-", d["task_name"],
                      d["business_key"] or "-", d["reason"], f"{d['error_class']}: {d['error_message'][:60]}",
                      str(d["attempts"]), d["replayed_task_id"] or "")
    out.print(table)


def _dead_dict(d: Any) -> dict[str, Any]:
    return {
        "id": d.id, "task_id": d.task_id, "task_name": d.task_name, "site": d.site,
        "business_key": d.business_key, "args": d.args, "kwargs": d.kwargs, "reason": d.reason,
        "error_class": d.error_class, "error_message": d.error_message, "attempts": d.attempts,
        "created_at": d.created_at.isoformat(),
        "replayed_at": d.replayed_at.isoformat() if d.replayed_at else None,
        "replayed_task_id": d.replayed_task_id,
    }


@dlq_app.command("show")
def dlq_show(dead_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """One dead letter in full, as JSON."""
    audit = _store()
    d = audit.get_dead_letter(dead_id)
    if d is None:
        raise fail(f"no dead letter {dead_id}")
    _json(_dead_dict(d))


@dlq_app.command("replay")
def dlq_replay(
    dead_id: Annotated[int | None, typer.Argument(metavar="[ID]")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Replay every waiting dead letter")] = False,
    site: Annotated[str | None, typer.Option(help="With --all: only this site")] = None,
) -> None:
    """Enqueue a dead letter's task again (new task id) and mark it replayed."""
    from siteops.replay import ReplayError, replay

    if (dead_id is None) == (not replay_all):
        raise fail("give a dead letter ID, or --all [--site CODE]")
    if site is not None and not replay_all:
        raise fail("--site goes with --all")
    audit = _store()
    celery_app()
    if dead_id is not None:
        ids = [dead_id]
    else:
        if site is not None and site not in registry().codes:
            raise fail(f"unknown site {site!r}; known sites: {', '.join(registry().codes)}")
        ids = [d.id for d in audit.list_dead_letters(site=site)]
    failed = 0
    for i in ids:
        try:
            new_id = replay(i)
            typer.echo(f"{i}\t{new_id}")
        except ReplayError as exc:
            failed += 1
            err.print(f"[red]dead letter {i}:[/] {exc}", highlight=False)
    if failed:
        raise typer.Exit(1)


# --- scans and findings ----------------------------------------------------------------


@app.command()
def schedule(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The effective beat schedule: one entry per site and scan kind, plus housekeeping."""
    from siteops.schedules import build_beat_schedule, describe

    entries = describe(build_beat_schedule(registry()))
    if as_json:
        _json(entries)
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

    if kind not in KINDS:
        raise fail(f"unknown scan kind {kind!r}; kinds: {', '.join(KINDS)}")
    enqueue(f"siteops.scan.{kind}", site=site, arg=None, wait=wait, timeout=timeout)


def _store_ready() -> Any:
    from siteops.store import findings, upgrade

    upgrade()
    return findings


@findings_app.callback()
def findings_list(
    ctx: typer.Context,
    site: Annotated[str | None, typer.Option()] = None,
    kind: Annotated[str | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option(help="open, acknowledged or resolved")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Findings, oldest first (filter by site, kind, status)."""
    if ctx.invoked_subcommand is not None:
        return
    store = _store_ready()
    rows = [store.as_dict(f) for f in store.search(site=site, kind=kind, status=status)]
    if as_json:
        _json(rows)
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
    store = _store_ready()
    finding = store.acknowledge(finding_id, by)
    if finding is None:
        raise fail(f"no finding {finding_id}")
    _json(store.as_dict(finding))


@report_app.command("sites")
def report_sites(
    out_file: Annotated[Path | None, typer.Option("--out", help="Also write a chart: .png or .html")] = None,
    days: Annotated[int, typer.Option(help="Window for failure and retry rates")] = 7,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Sites side by side: findings by kind, transfer age, receipt lateness, failures, dead letters, freshness."""
    from siteops.report import collect, fmt_age, rows, write_chart
    from siteops.rules.findings import KINDS

    reg = registry()
    _store_ready()
    stats = collect(list(reg.codes), days=days)
    if as_json:
        _json(rows(stats))
    else:
        table = Table(title=f"Sites compared (rates over {days} days)")
        for col in ("site", "aging transfers", "overdue receipts", "stock anomalies", "aging backorders",
                    "median transfer age", "median receipt lateness", "failures", "retries", "dead letters",
                    "stalest scan"):
            table.add_column(col, justify="right")
        for s in stats:
            table.add_row(
                s.site, *(str(s.open_by_kind.get(k, 0)) for k in KINDS),
                "-" if s.median_transfer_age_h is None else f"{s.median_transfer_age_h:g} h",
                "-" if s.median_receipt_late_d is None else f"{s.median_receipt_late_d:g} d",
                f"{100 * s.failure_rate:.1f}%", f"{100 * s.retry_rate:.1f}%", str(s.dead_letters),
                fmt_age(s.stalest_scan_age_s))
        out.print(table)
    if out_file is not None:
        try:
            written = write_chart(stats, out_file)
        except ValueError as exc:
            raise fail(str(exc)) from None
        err.print(f"chart written to {written}")


@sim_app.command("odoo", context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
                 add_help_option=False)
def sim_odoo(ctx: typer.Context) -> None:
    """The Odoo simulator with the demo network: --port 8069 --seed 7 --scale 1 [--odoo-version 17] ... (--help)."""
    from siteops.sim.odoo import main as sim_main

    raise typer.Exit(sim_main(list(ctx.args)))


@sim_app.command("webhook")
def sim_webhook(
    port: Annotated[int, typer.Option()] = 8070,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
) -> None:
    """A webhook receiver (stands in for an n8n workflow) that checks signatures; GET / lists deliveries."""
    import threading

    from siteops.connectors.errors import ConnectorError
    from siteops.connectors.webhook import configured_secret
    from siteops.sim.webhook import Receiver, serve

    try:
        secret = configured_secret()
    except (ConnectorError, OSError) as exc:
        raise fail(str(exc)) from None
    server = serve(Receiver(secret=secret), host=host, port=port)
    typer.echo(f"webhook receiver on http://{host}:{server.server_address[1]}/ (POST alerts, GET deliveries)")
    threading.Event().wait()


# --- processes -----------------------------------------------------------------------


def _celery_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "siteops.celery_app", *args]


def _prepare_worker_env() -> None:
    from siteops.settings import get_settings

    # prometheus_client picks its storage at import: set this before celery starts.
    prom = get_settings().var / "prometheus"
    prom.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(prom.resolve()))


@app.command()
def worker(
    site: Annotated[list[str] | None, typer.Option("--site", help="Serve this site's queue (repeatable)")] = None,
    platform: Annotated[bool, typer.Option("--platform", help="Also serve the platform queue")] = False,
    concurrency: Annotated[int, typer.Option("-c", "--concurrency")] = 2,
    loglevel: Annotated[str, typer.Option("-l", "--loglevel")] = "INFO",
    pool: Annotated[str, typer.Option(help="prefork (default), threads or solo")] = "prefork",
) -> None:
    """A Celery worker on exactly these sites' queues; its name says which sites."""
    reg = registry()
    codes = site or []
    for code in codes:
        if code not in reg.codes:
            raise fail(f"--site {code}: unknown site; known sites: {', '.join(reg.codes)}")
    if not codes and not platform:
        raise fail("give at least one --site CODE, or --platform")
    queues = [site_queue(c) for c in codes] + ([PLATFORM_QUEUE] if platform else [])
    name = "+".join(codes + (["platform"] if platform else []))
    from siteops.store import upgrade

    upgrade()
    _prepare_worker_env()
    argv = _celery_argv(
        "worker", "-Q", ",".join(queues), "-n", f"{name}@{socket.gethostname()}",
        "-c", str(concurrency), "-P", pool, "-l", loglevel, "-E",
        # Gossip and mingle talk to every other worker at start; per-site workers
        # need nothing from each other (style-lessons §4.2).
        "--without-mingle", "--without-gossip",
    )
    os.execv(sys.executable, argv)


@app.command()
def beat(loglevel: Annotated[str, typer.Option("-l", "--loglevel")] = "INFO") -> None:
    """The scheduler (run exactly one)."""
    from siteops.settings import get_settings

    celery_app()
    state = get_settings().var / "celerybeat-schedule"
    os.execv(sys.executable, _celery_argv("beat", "-l", loglevel, "-s", str(state)))


@app.command()
def flower(
    port: Annotated[int, typer.Option()] = 5555,
    address: Annotated[str, typer.Option(help="Bind address; keep loopback behind a proxy")] = "127.0.0.1",
) -> None:
    """Flower on 127.0.0.1:5555; basic auth from FLOWER_BASIC_AUTH=user:password."""
    from siteops.settings import get_settings

    celery_app()
    if not os.environ.get("FLOWER_BASIC_AUTH"):
        raise fail("set FLOWER_BASIC_AUTH=user:password (Flower's own variable); "
                   "Flower's API refuses everyone without it")
    db = get_settings().var / "flower.db"
    os.execv(sys.executable, _celery_argv(
        "flower", f"--address={address}", f"--port={port}",
        "--persistent=True", f"--db={db}", "--state_save_interval=60000",
    ))


@app.command()
def run(
    concurrency: Annotated[int, typer.Option("-c", "--concurrency", help="Pool size per site worker")] = 1,
    flower_port: Annotated[int, typer.Option()] = 5555,
    exporter_port: Annotated[int, typer.Option()] = 9808,
    odoo_port: Annotated[int, typer.Option(help="Port of the Odoo simulator")] = 8069,
    webhook_port: Annotated[int, typer.Option(help="Port of the demo webhook receiver")] = 8070,
    odoo_url: Annotated[str | None, typer.Option(help="A real Odoo instead of the simulator "
                                                 "(credentials from SITEOPS_ODOO_*)")] = None,
) -> None:
    """The embedded stack: private Redis, store, Odoo simulator, webhook receiver, a worker per site,
    platform worker, beat, Flower, exporter."""
    from siteops.runner import run_stack

    registry()
    raise typer.Exit(run_stack(concurrency=concurrency, flower_port=flower_port, exporter_port=exporter_port,
                               odoo_port=odoo_port, webhook_port=webhook_port, odoo_url=odoo_url))


@app.command()
def exporter(
    port: Annotated[int, typer.Option()] = 9808,
    address: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
) -> None:
    """The Prometheus endpoint: queues, workers, dead letters, beat, task and connector metrics."""
    from siteops.observability.exporter import serve
    from siteops.observability.logging import configure

    registry()
    _prepare_worker_env()  # read the workers' multiprocess metric files
    configure("INFO")
    serve(port, address)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the store's schema to the newest migration."""
    from siteops.settings import get_settings
    from siteops.store import upgrade

    upgrade()
    typer.echo(f"store up to date: {get_settings().effective_database_url.split('@')[-1]}")


def main() -> None:
    try:
        app()
    except PolicyError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()



