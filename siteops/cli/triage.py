"""`siteops triage`: the queue of triaged customer messages, one message's evidence, a
person's decision, and `classify` for one message from a file or standard input."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from siteops.cli import app, fail, out, print_json, registry, store_ready

triage_app = typer.Typer(help="Triage of inbound customer messages: queue, show, decide, classify.",
                         invoke_without_command=True)
app.add_typer(triage_app, name="triage")


def _row(m: Any, *, full: bool = False) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": m.id, "status": m.status, "site": m.site, "class": m.decided_label or m.label,
        "model_class": m.label, "confidence": m.confidence, "priority": m.priority,
        "references": [r["ref"] for r in json.loads(m.refs or "[]") if r.get("found")],
        "received_at": m.received_at.isoformat() if m.received_at else None, "source": m.source,
        "subject": m.subject, "decided_by": m.decided_by,
    }
    if full:
        d.update(evidence=json.loads(m.evidence or "[]"), priority_reasons=json.loads(m.priority_reasons or "[]"),
                 linked=json.loads(m.refs or "[]"), sender=m.sender, body=m.body, activity=m.activity,
                 model_version=m.model_version, message_id=m.message_id,
                 purged_at=m.purged_at.isoformat() if m.purged_at else None)
    return d


@triage_app.callback()
def triage_list(
    ctx: typer.Context,
    site: Annotated[str | None, typer.Option(help="Site code")] = None,
    status: Annotated[str | None, typer.Option(help="new, review, routed, decided")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    limit: Annotated[int, typer.Option(min=1)] = 200,
) -> None:
    """The triage queue, highest priority first."""
    if ctx.invoked_subcommand is not None:
        return
    from siteops.store import messages

    if site:
        registry().get(site)
    if status and status not in messages.STATUSES:
        raise fail(f"--status {status!r}: expected one of {', '.join(messages.STATUSES)}")
    store_ready()
    rows = [_row(m) for m in messages.queue(site=site, status=status, limit=limit)]
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"Triage queue ({len(rows)})")
    for col in ("id", "priority", "status", "site", "class", "conf", "references", "subject", "received"):
        table.add_column(col)
    for r in rows:
        conf = f"{r['confidence']:.2f}" if r["confidence"] is not None else ""
        table.add_row(str(r["id"]), f"{r['priority']:g}", r["status"], r["site"] or "", r["class"] or "", conf,
                      ", ".join(r["references"])[:40], (r["subject"] or "")[:50], (r["received_at"] or "")[:16])
    out.print(table)


@triage_app.command("show")
def triage_show(
    message: Annotated[int, typer.Argument(help="The message's id in the triage queue")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One message: its text (while retained), class, confidence, evidence, references, priority."""
    from siteops.store import messages

    store_ready()
    m = messages.get(message)
    if m is None:
        raise fail(f"no triage message {message}")
    d = _row(m, full=True)
    d["corrections"] = [{"predicted": c.predicted, "corrected": c.corrected, "by": c.decided_by,
                         "at": c.decided_at.isoformat()} for c in messages.corrections(message)]
    if as_json:
        print_json(d)
        return
    for key in ("id", "status", "site", "class", "model_class", "confidence", "priority", "priority_reasons",
                "evidence", "linked", "activity", "source", "received_at", "sender", "subject", "decided_by",
                "corrections", "model_version", "purged_at"):
        value = d[key]
        if key == "linked":
            value = [f"{r['ref']} -> {r['model']}#{r['res_id']} ({r.get('site') or '?'})" if r.get("found")
                     else f"{r['ref']} (not found)" for r in value]
        out.print(f"[bold]{key}[/]: {value}", highlight=False)
    out.print("[bold]body[/]:", highlight=False)
    typer.echo(d["body"] if d["body"] is not None else "(deleted: past the retention period)")


@triage_app.command("decide")
def triage_decide(
    message: Annotated[int, typer.Argument(help="The message's id in the triage queue")],
    label: Annotated[str, typer.Option("--class", help="return, shortage, delivery_issue, "
                                                        "urgent_replenishment, other")],
    by: Annotated[str | None, typer.Option(help="Who decides (default: $USER)")] = None,
) -> None:
    """Record a person's class for a message (kept as new labelled data, and counted)."""
    import getpass

    from siteops.services import triage

    store_ready()
    try:
        c = triage.decide(message, label, by or getpass.getuser())
    except KeyError:
        raise fail(f"no triage message {message}") from None
    except ValueError as exc:
        raise fail(str(exc)) from None
    change = "confirmed" if c.predicted == c.corrected else f"corrected from {c.predicted or 'none'}"
    typer.echo(f"message {message}: {c.corrected} ({change}) by {c.decided_by}")


@triage_app.command("classify")
def triage_classify(
    file: Annotated[Path | None, typer.Option("--file", help="An .eml file, or plain text whose first line is "
                                                             "the subject (default: standard input)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    link: Annotated[bool, typer.Option("--link", help="Look the references up in Odoo (read only)")] = False,
) -> None:
    """Classify one message without storing anything."""
    import datetime as dt

    from siteops.services import triage
    from siteops.triage.intake import BadMessage, looks_like_eml, parse_eml, parse_text

    where = str(file) if file else "standard input"
    try:
        data = file.read_bytes() if file else sys.stdin.buffer.read()
    except OSError as exc:
        raise fail(f"--file {file}: {exc.strerror}") from None
    try:
        inbound = parse_eml(data) if (file and file.suffix.lower() == ".eml") or looks_like_eml(data) \
            else parse_text(data.decode("utf-8", "replace"))
    except BadMessage as exc:
        raise fail(f"{where}: {exc}") from None
    registry()
    odoo = None
    if link:
        from siteops.connectors.odoo import get_client

        odoo = get_client(triage.default_site())
    a = triage.analyse(inbound.subject, inbound.body, odoo=odoo, now=dt.datetime.now(dt.UTC))
    result = a.as_dict()
    if as_json:
        print_json(result)
        return
    flag = "  [yellow]needs review[/]" if a.needs_review else ""
    out.print(f"[bold]{a.label}[/] confidence {a.confidence:.2f}{flag}", highlight=False)
    out.print(f"evidence: {', '.join(a.evidence) or '-'}", highlight=False)
    refs = [f"{r['ref']} ({r['model']}" + (f"#{r['res_id']}, {r.get('site')})" if r.get("found") else ")")
            for r in a.references]
    out.print(f"references: {', '.join(refs) or '-'}", highlight=False)
    out.print(f"priority: {a.priority:g} ({'; '.join(a.reasons)})", highlight=False)
    out.print(f"site: {a.site}", highlight=False)
