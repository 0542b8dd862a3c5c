"""`siteops edi exchanges` and `siteops sim edi`."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.table import Table

from siteops.cli import app, fail, out, print_json, sim_app, store_ready

edi_app = typer.Typer(no_args_is_help=True, help="EDI partners and the files exchanged with them.")
app.add_typer(edi_app, name="edi")


@edi_app.command("exchanges")
def exchanges(
    site: Annotated[str | None, typer.Option(help="Only this site")] = None,
    partner: Annotated[str | None, typer.Option(help="Only this partner")] = None,
    state: Annotated[str | None, typer.Option(help="new, sent, acknowledged, applied or error")] = None,
    limit: Annotated[int, typer.Option()] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The files sent to and received from EDI partners, newest first."""
    from siteops.store import exchanges as store

    if state and state not in store.ExchangeState.ALL:
        raise fail(f"--state {state!r}: expected one of {', '.join(store.ExchangeState.ALL)}")
    store_ready()
    rows = store.search(site=site, partner=partner, state=state, limit=limit)
    if as_json:
        print_json([store.as_dict(r) for r in rows])
        return
    table = Table(title=f"EDI exchanges ({len(rows)})")
    for column in ("id", "dir", "partner", "site", "type", "interchange", "state", "order/shipment", "odoo",
                   "file", "error"):
        table.add_column(column)
    for r in rows:
        table.add_row(str(r.id), r.direction, r.partner, r.site or "-", r.doc_type, r.interchange_control or "-",
                      r.state, r.business_key or "-", f"{r.odoo_model}:{r.odoo_id}" if r.odoo_id else "-",
                      r.filename, (r.error or "")[:60])
    out.print(table)


@sim_app.command("edi")
def sim_edi(
    interval: Annotated[float, typer.Option(help="Seconds between looks at the mailboxes")] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="Answer what is there, then exit")] = False,
) -> None:
    """A supplier answering our orders in each partner's mailbox (997/CONTRL, 855/ORDRSP, 856/DESADV)."""
    from siteops.config.edi import get_edi
    from siteops.config.settings import get_settings
    from siteops.sim.edi import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    var = get_settings().var
    typer.echo(f"EDI supplier on {var / 'edi'} (partners: {', '.join(p.id for p in get_edi()) or 'none'})")
    count = serve(get_edi(), var, interval=interval, once=once)
    if once:
        typer.echo(f"{count} answer files written")
