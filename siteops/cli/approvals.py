"""`siteops approvals`: the operator's view of approval requests, and deciding or delegating.

    siteops approvals [--site S] [--status pending] [--json]
    siteops approvals show ID [--json]
    siteops approvals decide ID --approve|--reject --as LOGIN [--comment TEXT]
    siteops approvals delegate FROM TO --until 2026-12-31
    siteops approvals audit [--request ID] [--person LOGIN] [--model M --record ID] [--json]

A refused decision (segregation of duties, not an approver, nothing pending) exits 3 and
says why; it is audited and counted like any other.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer
from rich.table import Table

from siteops.cli import app, celery_app, choice, fail, out, print_json, site_code, store_ready

approvals_app = typer.Typer(help="Approval requests: list, show, decide, delegate, audit.",
                            invoke_without_command=True)
app.add_typer(approvals_app, name="approvals")

STATUSES = ("pending", "approved", "rejected", "cancelled")
REFUSED_EXIT = 3


def _public(r: dict[str, Any]) -> dict[str, Any]:
    return {"id": r["id"], "site": r["site"], "kind": r["kind"], "status": r["status"],
            "requested_by": r["requested_by"], "record": r["record"], "amount": r["amount"], "rule": r["rule"],
            "created_at": r["created_at"],
            "tiers": [{"group": t["group"], "status": t["status"], "deadline": t["deadline"],
                       "decided_by": t["decided_by"], "as_delegate_of": t["as_delegate_of"]} for t in r["tiers"]]}


@approvals_app.callback()
def approvals_list(
    ctx: typer.Context,
    site: Annotated[str | None, typer.Option(help="Site code")] = None,
    status: Annotated[str | None, typer.Option(help="pending, approved, rejected or cancelled")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Approval requests, oldest first."""
    if ctx.invoked_subcommand is not None:
        return
    from siteops.store import approvals

    site = None if site is None else site_code(site)
    status = None if status is None else choice(status, STATUSES, "--status", "status")
    store_ready()
    rows = [_public(r) for r in approvals.search(site=site, status=status)]
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"Approval requests ({len(rows)})")
    for col in ("id", "site", "kind", "status", "requested by", "record", "amount", "tiers"):
        table.add_column(col)
    for r in rows:
        tiers = " > ".join(f"{t['group']}:{t['status']}" for t in r["tiers"]) or "-"
        table.add_row(str(r["id"]), r["site"], r["kind"], r["status"], r["requested_by"],
                      f"{r['record']['model']}#{r['record']['id']}", f"{r['amount']:.2f}", tiers)
    out.print(table)


@approvals_app.command("show")
def show(request_id: int, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One request: its tiers, who decided (as whom) and when, and the rule that routed it."""
    from siteops.store import approvals

    store_ready()
    r = approvals.get(request_id)
    if r is None:
        raise fail(f"no approval request {request_id}")
    r["audit"] = approvals.audit(request_id=request_id)
    if as_json:
        print_json(r)
        return
    out.print(f"request {r['id']}  {r['site']}  {r['kind']}  {r['status']}  amount {r['amount']:.2f}")
    out.print(f"record {r['record']['model']}#{r['record']['id']}  requested by {r['requested_by']}"
              f"  record created by {r['created_by']}  at {r['created_at']}")
    out.print(f"routed by rule {r['rule']}: {r['rule_why']}", highlight=False, markup=False)
    if r["applied"]:
        out.print(f"in Odoo: {r['applied']} at {r['applied_at']}", markup=False)
    table = Table(title="tiers")
    for col in ("#", "group", "status", "approvers", "deadline", "decided by", "as delegate of", "decided at",
                "escalated"):
        table.add_column(col)
    for t in r["tiers"]:
        table.add_row(str(t["seq"] + 1), t["group"], t["status"], ", ".join(t["approvers"]), t["deadline"] or "",
                      t["decided_by"] or "", t["as_delegate_of"] or "", t["decided_at"] or "", t["escalated_at"] or "")
    out.print(table)
    for a in r["audit"]:
        who = a["person"] or "siteops"
        if a["as_delegate_of"]:
            who += f" (for {a['as_delegate_of']})"
        out.print(f"  {a['at'][:19]}  {a['action']:<12} {who}: {a['detail']}", markup=False, highlight=False)


@approvals_app.command("decide")
def decide(
    request_id: int,
    person: Annotated[str, typer.Option("--as", help="The deciding person's Odoo login")],
    approve: Annotated[bool, typer.Option("--approve")] = False,
    reject: Annotated[bool, typer.Option("--reject")] = False,
    comment: Annotated[str, typer.Option(help="Kept in the audit")] = "",
) -> None:
    """Approve or reject the request's pending tier as LOGIN (segregation of duties applies)."""
    from siteops.rules.approvals import Refused
    from siteops.services import approvals as service

    if approve == reject:
        raise fail("give exactly one of --approve or --reject")
    store_ready()
    try:
        result = service.decide(request_id, person, approve, via="cli", comment=comment)
    except Refused as exc:
        raise fail(f"refused: {exc.reason}", code=REFUSED_EXIT) from None
    from siteops.store import approvals

    req = approvals.get(request_id)
    assert req is not None
    # The next step in Odoo (the next tier's activity, or confirming / cancelling) runs on
    # the site's worker; the approvals sync does it too if this message is lost.
    task = celery_app().send_task("siteops.approvals.advance", args=[req["site"], request_id])
    delegate = f" as delegate of {result['as_delegate_of']}" if result["as_delegate_of"] else ""
    typer.echo(f"request {request_id}: {result['outcome']} (tier {result['tier']} by {person}{delegate}); "
               f"next step enqueued as {task.id}")


@approvals_app.command("delegate")
def delegate(
    from_login: Annotated[str, typer.Argument(metavar="FROM")],
    to_login: Annotated[str, typer.Argument(metavar="TO")],
    until: Annotated[str, typer.Option(help="Last day of the delegation, YYYY-MM-DD (or an ISO datetime, UTC)")],
) -> None:
    """Let TO decide in FROM's place until the date (recorded as a delegate's decision)."""
    from siteops.store import approvals

    try:
        when = dt.datetime.fromisoformat(until)
    except ValueError:
        raise fail(f"--until: {until!r} is not a date (YYYY-MM-DD)") from None
    if len(until) == 10:
        when = when + dt.timedelta(days=1)  # the whole last day
    when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    if when <= dt.datetime.now(dt.UTC):
        raise fail(f"--until: {until} is in the past")
    if from_login == to_login:
        raise fail("FROM and TO are the same person")
    store_ready()
    row = approvals.add_delegation(from_login, to_login, when)
    typer.echo(f"delegation {row}: {to_login} decides for {from_login} until {when.isoformat()}")


@approvals_app.command("audit")
def audit(
    request: Annotated[int | None, typer.Option(help="Request id")] = None,
    person: Annotated[str | None, typer.Option(help="Odoo login (as decider or delegator)")] = None,
    model: Annotated[str | None, typer.Option(help="Odoo model of the record")] = None,
    record: Annotated[int | None, typer.Option(help="Odoo record id")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Every approval step, by request, record or person."""
    from siteops.store import approvals

    store_ready()
    rows = approvals.audit(request_id=request, record_model=model, record_id=record, person=person)
    if as_json:
        print_json(rows)
        return
    for a in rows:
        out.print(f"{a['at'][:19]}  #{a['request_id']}  {a['action']:<12} {a['person'] or 'siteops'}: {a['detail']}",
                  markup=False, highlight=False)
