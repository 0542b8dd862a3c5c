"""Sites, enqueueing and the dead-letter store."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from siteops.cli import (
    app,
    broker_ready,
    celery_app,
    dlq_app,
    err,
    fail,
    out,
    print_json,
    registry,
    site_code,
    store_ready,
)
from siteops.config.queues import PLATFORM_QUEUE, UnknownSite, UnknownTask, WrongQueue, site_queue
from siteops.config.sites import plain


def _flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# --- sites ---------------------------------------------------------------------------


@app.command()
def sites(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Each site, its queue and its effective parameters (policy + site overrides)."""
    reg = registry()
    if as_json:
        print_json([s.as_dict() for s in reg])
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


def check_arguments(task: Any, args: list[Any], kwargs: dict[str, Any]) -> None:
    """The task's own signature decides; a mismatch names its parameters, not a traceback."""
    import inspect

    signature = inspect.signature(task.run)
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        params = []
        for i, p in enumerate(signature.parameters.values()):
            text = p.name if p.default is inspect.Parameter.empty else f"{p.name}={p.default!r}"
            params.append(f"{text} (from --site)" if i == 0 and getattr(task, "site_bound", False) else text)
        raise fail(f"{task.name}: {exc}; its parameters: {', '.join(params) or '(none)'} "
                   "(give the others as --arg name=value)") from None


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
        site = site_code(site)
        args.append(site)
    elif site is not None:
        raise fail(f"{task} runs on the {PLATFORM_QUEUE} queue and takes no --site")
    from siteops.config.redaction import refuse_secret_arguments

    try:  # a secret is refused for what it is, before its name is judged as a parameter
        refuse_secret_arguments(task, kwargs)
    except ValueError as exc:
        raise fail(str(exc)) from None
    check_arguments(t, args, kwargs)
    broker_ready()
    try:
        result = t.apply_async(args=args, kwargs=kwargs)
    except (UnknownSite, UnknownTask, WrongQueue, ValueError, KeyError) as exc:
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
    print_json(value)


# --- dead letters --------------------------------------------------------------------


def _audit() -> Any:
    from siteops.store import audit

    store_ready()
    return audit


@dlq_app.command("list")
def dlq_list(
    site: Annotated[str | None, typer.Option(help="Only this site")] = None,
    include_replayed: Annotated[bool, typer.Option("--all", help="Include replayed ones")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Dead letters waiting for a decision (oldest first)."""
    if site is not None:
        site = site_code(site)
    audit = _audit()
    rows = audit.list_dead_letters(site=site, include_replayed=include_replayed)
    data = [_dead_dict(d) for d in rows]
    if as_json:
        print_json(data)
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
        "message": d.message,
    }


@dlq_app.command("show")
def dlq_show(dead_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """One dead letter in full, as JSON."""
    audit = _audit()
    d = audit.get_dead_letter(dead_id)
    if d is None:
        raise fail(f"no dead letter {dead_id}")
    print_json(_dead_dict(d))


@dlq_app.command("replay")
def dlq_replay(
    dead_id: Annotated[int | None, typer.Argument(metavar="[ID]")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Replay every waiting dead letter")] = False,
    site: Annotated[str | None, typer.Option(help="With --all: only this site")] = None,
) -> None:
    """Enqueue a dead letter's task again (new task id) and mark it replayed."""
    from siteops.services.replay import ReplayError, replay

    if (dead_id is None) == (not replay_all):
        raise fail("give a dead letter ID, or --all [--site CODE]")
    if site is not None and not replay_all:
        raise fail("--site goes with --all")
    if site is not None:
        site = site_code(site)
    audit = _audit()
    celery_app()
    broker_ready()
    ids = [dead_id] if dead_id is not None else [d.id for d in audit.list_dead_letters(site=site)]
    failed = 0
    for i in ids:
        try:
            new_id = replay(i)
            typer.echo(f"{i}\t{new_id}")
        except ReplayError as exc:
            failed += 1
            err.print(f"[red]dead letter {i}:[/] {escape(str(exc))}", highlight=False)
    if failed:
        raise typer.Exit(1)
