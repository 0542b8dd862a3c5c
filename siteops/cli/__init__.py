"""The `siteops` command: sites, jobs and dead letters, scans and findings, and the processes
of the platform. The commands live in `jobs`, `scans` and `processes`; this module holds
the app and what they share."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.console import Console

from siteops.config.sites import PolicyError, Registry, load_registry

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


def store_ready() -> None:
    """Commands that read the store bring its schema up to date first."""
    from siteops.store import upgrade

    upgrade()


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def main() -> None:
    try:
        app()
    except PolicyError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)


# The commands register themselves on the app when their modules load.
from siteops.cli import edi, jobs, processes, scans  # noqa: E402, F401
