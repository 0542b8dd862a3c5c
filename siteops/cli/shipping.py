"""`siteops shipments` (labels and tracking state), `siteops shipping ...` (ready pickings,
the tracking webhook endpoint) and `siteops sim carrier` (the EasyPost-shaped simulator)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from siteops.cli import app, celery_app, fail, out, print_json, registry, sim_app, store_ready

shipping_app = typer.Typer(no_args_is_help=True, help="Shipping: labels for ready pickings, tracking webhooks.")
app.add_typer(shipping_app, name="shipping")


@app.command("shipments")
def shipments_list(
    site: Annotated[str | None, typer.Option(help="Site code")] = None,
    status: Annotated[str | None, typer.Option(help="pre_transit, in_transit, out_for_delivery, delivered, "
                                                    "exception, returned, unknown")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Shipments with their label and tracking state, oldest first."""
    from siteops.connectors.carriers.model import TrackStatus
    from siteops.store import shipments

    if site:
        registry().get(site)
    if status and status not in {s.value for s in TrackStatus}:
        raise fail(f"--status {status!r}: expected one of {', '.join(s.value for s in TrackStatus)}")
    store_ready()
    rows = [shipments.as_dict(r) for r in shipments.search(site=site, status=status)]
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"Shipments ({len(rows)})")
    for col in ("site", "picking", "carrier", "service", "tracking", "status", "detail", "at"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["site"], r["picking"], r["carrier"] or "", r["service"] or "", r["tracking_code"],
                      r["status"], (r["message"] or r["detail"] or "")[:50], (r["status_at"] or "")[:19])
    out.print(table)


@shipping_app.command("ship-ready")
def ship_ready(site: Annotated[str, typer.Option(help="Site code")]) -> None:
    """Enqueue one label per ready outgoing picking of the site (what beat does every few minutes)."""
    registry().get(site)
    result = celery_app().tasks["siteops.shipping.ship_ready"].delay(site)
    typer.echo(result.id)


@shipping_app.command("webhooks")
def webhooks(
    port: Annotated[int, typer.Option()] = 8072,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
) -> None:
    """Serve the carrier tracking webhook (POST /carriers/easypost/tracking) until interrupted."""
    import signal
    import threading

    from siteops.connectors.carriers.config import webhook_secret
    from siteops.connectors.errors import ConnectorError
    from siteops.services.carrier_webhooks import PATH, serve

    try:
        webhook_secret()
    except ConnectorError as exc:
        raise fail(str(exc)) from None
    celery_app()  # routing of record_tracking needs the task modules
    store_ready()
    server = serve(host, port)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    typer.echo(f"carrier tracking webhooks at http://{host}:{server.server_address[1]}{PATH}")
    stop.wait()
    server.shutdown()


@sim_app.command("carrier", context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
                 add_help_option=False)
def sim_carrier(ctx: typer.Context) -> None:
    """The carrier simulator (EasyPost API): --port 8071 --step-seconds 20 --rate-limit 0 ... (--help)."""
    from siteops.sim.carrier import main as sim_main

    raise typer.Exit(sim_main(list(ctx.args)))
