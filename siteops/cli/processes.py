"""The processes of the platform: workers, beat, Flower, the exporter, the embedded stack, simulators."""

from __future__ import annotations

import os
import socket
import sys
from typing import Annotated

import typer

from siteops.cli import (
    app,
    celery_app,
    db_app,
    fail,
    registry,
    sim_app,
    site_code,
    store_ready,
)
from siteops.config.queues import PLATFORM_QUEUE, site_queue


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
    from siteops.config.settings import get_settings

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
    registry()
    codes = [site_code(code) for code in site or []]
    if not codes and not platform:
        raise fail("give at least one --site CODE, or --platform")
    queues = [site_queue(c) for c in codes] + ([PLATFORM_QUEUE] if platform else [])
    name = "+".join(codes + (["platform"] if platform else []))
    # Never migrates: a worker runs against the schema its code was written for, or not at all.
    store_ready()
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
    from siteops.config.settings import get_settings

    celery_app()
    store_ready()
    state = get_settings().var / "celerybeat-schedule"
    os.execv(sys.executable, _celery_argv("beat", "-l", loglevel, "-s", str(state)))


@app.command()
def flower(
    port: Annotated[int, typer.Option()] = 5555,
    address: Annotated[str, typer.Option(help="Bind address; keep loopback behind a proxy")] = "127.0.0.1",
) -> None:
    """Flower on 127.0.0.1:5555; basic auth from FLOWER_BASIC_AUTH=user:password."""
    from siteops.config.secrets import SecretError, read_secret
    from siteops.config.settings import get_settings

    celery_app()
    try:
        auth = read_secret("FLOWER_BASIC_AUTH")
    except SecretError as exc:
        raise fail(str(exc)) from None
    if not auth:
        raise fail("set FLOWER_BASIC_AUTH=user:password (Flower's own variable) or FLOWER_BASIC_AUTH_FILE; "
                   "Flower's API refuses everyone without it")
    # The _FILE form is a compose/Kubernetes secret; Flower itself reads only the variable.
    os.environ["FLOWER_BASIC_AUTH"] = auth
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
    site: Annotated[list[str] | None, typer.Option("--site", help="Start workers for these sites only "
                                                   "(repeatable; default: every site)")] = None,
    without: Annotated[list[str] | None, typer.Option(
        "--without", help="Leave a part out (repeatable): odoo, webhook, carrier, edi, ingress, platform, beat, "
                          "flower, exporter, scans")] = None,
    carrier_port: Annotated[int, typer.Option(help="Port of the carrier simulator")] = 8071,
    ingress_port: Annotated[int, typer.Option(help="Port of the ingress (Odoo and carrier webhooks)")] = 8073,
) -> None:
    """The whole platform on this machine (what `make run` runs): Redis, store, simulators, workers, beat, Flower."""
    from siteops.sim.runner import OPTIONAL_PARTS, run_stack

    reg = registry()
    known = {c.upper(): c for c in reg.codes}
    for code in site or []:
        if code.upper() not in known:
            raise fail(f"--site {code}: unknown site; known sites: {', '.join(reg.codes)}")
    for part in without or []:
        if part not in OPTIONAL_PARTS:
            raise fail(f"--without {part}: unknown part; parts: {', '.join(OPTIONAL_PARTS)}")
    raise typer.Exit(run_stack(concurrency=concurrency, flower_port=flower_port, exporter_port=exporter_port,
                               odoo_port=odoo_port, webhook_port=webhook_port, odoo_url=odoo_url,
                               sites=[known[c.upper()] for c in site] if site else None, without=without or (),
                               carrier_port=carrier_port, ingress_port=ingress_port))


@app.command()
def exporter(
    port: Annotated[int, typer.Option()] = 9808,
    address: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
) -> None:
    """The Prometheus endpoint: queues, workers, dead letters, beat, task and connector metrics."""
    from siteops.observability.exporter import serve
    from siteops.observability.logging import configure

    registry()
    store_ready()
    _prepare_worker_env()  # read the workers' multiprocess metric files
    configure("INFO")
    serve(port, address)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the store's schema to the newest migration (the only command that migrates)."""
    from siteops.store.db import SchemaMismatch, StoreError, check_schema, database_url, masked, upgrade

    url = database_url()
    try:
        try:
            check_schema(url)  # a store that does not answer fails here, in seconds
        except SchemaMismatch as exc:
            if exc.newer:  # migrated by newer code: nothing here can bring it back
                raise
            upgrade(url)
        revisions = check_schema(url)
    except StoreError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"store up to date at revision {', '.join(revisions)}: {masked(url)}")


@db_app.command("status")
def db_status() -> None:
    """The store's schema revision and the one this code expects (exit 1 if they differ)."""
    from siteops.store.db import StoreError, current_revisions, database_url, expected_revisions, masked

    url = database_url()
    try:
        current = current_revisions(url)
    except StoreError as exc:
        raise fail(str(exc)) from None
    expected = expected_revisions()
    typer.echo(f"store:    {masked(url)}\ncurrent:  {', '.join(current) or '(no schema)'}\n"
               f"expected: {', '.join(expected)}")
    if set(current) != set(expected):
        raise typer.Exit(1)
