"""`siteops ingress`: the HTTP entry point for Odoo events and mounted hooks."""

from __future__ import annotations

from typing import Annotated

import typer

from siteops.cli import app, registry


@app.command()
def ingress(
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8073,
    host: Annotated[str, typer.Option(help="Address to bind; put a TLS proxy in front of it")] = "127.0.0.1",
) -> None:
    """Receive Odoo automation webhooks (POST /hooks/odoo/<SITE>/<token>) and mounted hooks."""
    import uvicorn

    registry()  # a bad sites.toml stops here, with the key that is wrong
    from siteops.ingress.app import production_app

    typer.echo(f"ingress on http://{host}:{port}/ (POST /hooks/odoo/<SITE>/<token>)")
    # One process, no reload, uvicorn's access log off: URLs carry Odoo's token.
    uvicorn.run(production_app(), host=host, port=port, access_log=False, log_level="warning")
