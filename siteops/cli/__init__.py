"""The `siteops` command: sites, jobs and dead letters, scans and findings, and the processes
of the platform. The commands live in `jobs`, `scans` and `processes`; this module holds
the app and what they share."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from siteops.config.queues import UnknownSite, UnknownTask, WrongQueue
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


def say_error(message: str) -> None:
    # The message is plain text: escaped, so `[sites.NORTH]` is printed, not eaten as markup.
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)


def fail(message: str, code: int = 2) -> typer.Exit:
    say_error(message)
    return typer.Exit(code)


def registry() -> Registry:
    try:
        return load_registry()
    except PolicyError as exc:
        raise fail(str(exc)) from None


def site_code(value: str, option: str = "--site") -> str:
    """A site code as the user typed it (any case) -> the code of sites.toml, or an error
    listing the known ones."""
    codes = registry().codes
    for code in codes:
        if code.upper() == value.strip().upper():
            return code
    raise fail(f"{option}: unknown site {value!r}; known sites: {', '.join(codes)}")


def choice(value: str, known: Any, option: str, what: str = "value") -> str:
    """One of a fixed set of values (scan kinds, statuses), or an error listing them."""
    known = tuple(known)
    if value in known:
        return value
    lowered = value.strip().lower()
    if lowered in known:
        return lowered
    raise fail(f"{option}: unknown {what} {value!r}; known: {', '.join(known)}")


def celery_app() -> Any:
    try:
        from siteops.celery_app import app as celery

        celery.loader.import_default_modules()
        return celery
    except PolicyError as exc:
        raise fail(str(exc)) from None


def store_ready() -> None:
    """Commands that use the store check its schema first; they never migrate it
    (that is `siteops db upgrade`, on purpose)."""
    from siteops.store.db import StoreError, check_schema

    registry()  # a bad sites file is refused by every platform command, the same way
    try:
        check_schema()
    except StoreError as exc:
        raise fail(str(exc)) from None


#: Seconds a command waits for the broker or the result store before saying it is down.
BROKER_TIMEOUT = 2.0


def _probe(url: str, what: str, hint: str) -> None:
    from kombu.utils.url import maybe_sanitize_url

    try:
        if url.startswith(("redis://", "rediss://", "unix://")):
            import redis

            client = redis.Redis.from_url(url, socket_connect_timeout=BROKER_TIMEOUT, socket_timeout=BROKER_TIMEOUT)
            try:
                client.ping()
            finally:
                client.close()
        else:
            from kombu import Connection

            with Connection(url, connect_timeout=BROKER_TIMEOUT) as conn:
                conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT)
    except Exception as exc:
        raise fail(f"the {what} at {maybe_sanitize_url(url)} does not answer ({type(exc).__name__}: {exc}); "
                   f"{hint}") from None


def broker_ready() -> None:
    """Before enqueueing: the broker and the result store answer, or a clear error in
    about two seconds (Celery itself would retry for half a minute, then print pages)."""
    from siteops.config.settings import get_settings

    settings = get_settings()
    hint = ("check that Redis is running (`make run` starts one on port 6390) "
            "and SITEOPS_BROKER_URL")
    _probe(settings.broker_url, "broker", hint)
    backend = settings.effective_result_backend
    if backend and backend != settings.broker_url and backend.startswith(("redis://", "rediss://", "unix://")):
        _probe(backend, "result store", "check that it is running, and SITEOPS_RESULT_BACKEND")


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


#: Errors that are the user's input or environment, not a bug: a message, never a traceback.
USER_ERRORS: tuple[type[Exception], ...] = (PolicyError, UnknownSite, UnknownTask, WrongQueue)


def main() -> None:
    from siteops.store.db import StoreError

    try:
        app()
    except (*USER_ERRORS, StoreError) as exc:  # type: ignore[misc]
        say_error(str(exc))
        sys.exit(2)


# The commands register themselves on the app when their modules load.
from siteops.cli import (  # noqa: E402, F401
    approvals,
    edi,
    ingress,
    jobs,
    processes,
    reconcile,
    scans,
    shipping,
    triage,
)
