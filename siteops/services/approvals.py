"""Replenishment and approvals, orchestrated: tasks call this; rules decide; Odoo is acted on.

- `check_product`: a stock change at a site -> `propose_replenishment` -> a request routed
  by the approval matrix, its Odoo record (a draft internal transfer from the central
  warehouse, or a draft purchase order to the preferred supplier) and a to-do activity
  for the first tier's approver.
- `intake`: what people drafted (purchase orders waiting for Odoo's double validation,
  inventory counts above the variance thresholds) becomes a request too, so segregation
  of duties covers human requesters.
- `decide`: one decision (CLI, or an activity marked done in Odoo), checked by the SoD
  rules; the store applies it with a guarded update.
- `advance`: what a request is owed next in Odoo: the next tier's activity, or the outcome
  (confirm the transfer / the purchase order and hand it to EDI; or cancel with a note).
- `sync`: the catch-up of all of the above for one site (beat), and `escalate`.

Every Odoo effect runs through the task's `idempotent_call(key, effect, check=...)`.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from siteops.config.sites import Registry, Site, get_registry
from siteops.connectors.errors import PermanentError
from siteops.rules import approvals as rules
from siteops.rules.replenish import PURCHASE, TRANSFER, Proposal, Skip
from siteops.rules.stock import m2o_id, m2o_name
from siteops.store import approvals as store
from siteops.store.models import utcnow

log = logging.getLogger(__name__)

Call = Callable[..., Any]  # SiteopsTask.idempotent_call
Dispatch = Callable[[str, list[Any]], str | None]  # (task name, args) -> task id, or None if not deployed
EDI_TASK = "siteops.edi.dispatch_po"
MODEL = {TRANSFER: "stock.picking", PURCHASE: "purchase.order", "adjustment": "stock.quant"}
_TAGS = re.compile(r"<[^>]+>")






def company_amount(order: Mapping[str, Any]) -> float:
    """A purchase order's total in the company's currency, which the policy's thresholds
    are in: `amount_total` is in the order's currency, and Odoo's stored `currency_rate` is
    the company currency -> order currency rate at the order's date (1 for the same)."""
    total = float(order.get("amount_total") or 0)
    rate = float(order.get("currency_rate") or 0)
    return total / rate if rate > 0 else total


def siteops_login() -> str:
    """The Odoo login siteops acts as: the requester of the requests it proposes."""
    from siteops.connectors.odoo.config import OdooConfig

    try:
        return OdooConfig.from_env().login
    except Exception:  # no Odoo configured (a unit test): a name that is nobody's login
        return "siteops"


class Approvals:
    def __init__(self, site: str, odoo: Any, registry: Registry | None = None) -> None:
        self.registry = registry or get_registry()
        self.site: Site = self.registry.get(site)
        self.odoo = odoo
        self._users: dict[str, int | None] = {}

    # -- reading Odoo ---------------------------------------------------------------------

    def _warehouse(self, site: Site) -> dict[str, Any]:
        rows = self.odoo.search_read("stock.warehouse", [("code", "=", site.odoo_warehouse)],
                                     ["id", "lot_stock_id", "int_type_id", "in_type_id"], limit=1)
        if not rows:
            raise PermanentError(f"no Odoo warehouse with code {site.odoo_warehouse!r} for site {site.code}",
                                 system="odoo", operation="approvals")
        return dict(rows[0])

    def user_id(self, login: str) -> int | None:
        if login not in self._users:
            found = self.odoo.search("res.users", [("login", "=", login)], limit=1)
            self._users[login] = found[0] if found else None
        return self._users[login]

    def _login(self, user: Any) -> str | None:
        uid = m2o_id(user)
        if uid is None:
            return None
        rows = self.odoo.read("res.users", [uid], ["login"])
        return str(rows[0]["login"]) if rows else None

    # -- proposals ------------------------------------------------------------------------

    def proposals(self, product_ids: list[int] | None = None) -> tuple[list[Proposal], list[Skip]]:
        """What `propose_replenishment` says for this site (all its orderpoints, or these
        products'), read by the one reader `siteops reconcile stock` uses too."""
        from siteops.services.replenishment import Replenishment

        got = Replenishment(self.odoo, self.site, self.registry).propose(product_ids)
        return got.proposals, got.skipped

    def _route(self, doc: rules.Document) -> rules.Routing:
        return rules.route(self.registry.approvals, doc, params=self.site.params, responsible=self.site.responsible)

    def check_product(self, call: Call, product_id: int, dispatch: Dispatch) -> dict[str, Any]:
        proposals, skipped = self.proposals([product_id])
        return {"site": self.site.code, "product_id": product_id, "requests": self._request(call, proposals, dispatch),
                "skipped": [str(s) for s in skipped]}

    def replenish(self, call: Call, dispatch: Dispatch) -> dict[str, Any]:
        """Every orderpoint of the site (the sync's pass): shortages no event announced."""
        proposals, skipped = self.proposals()
        made = self._request(call, proposals, dispatch)
        return {"proposed": sum(1 for m in made if m["created"]), "skipped": len(skipped)}

    def _request(self, call: Call, proposals: list[Proposal], dispatch: Dispatch) -> list[dict[str, Any]]:
        made = []
        for p in proposals:
            routing = self._route(rules.Document(p.kind, p.site, p.amount, p.quantity, p.category, p.vendor_class))
            rid, created = store.create_request(
                site=self.site.code, kind=p.kind, requested_by=siteops_login(), record_model=MODEL[p.kind],
                routing=routing, amount=p.amount, open_key=p.key, product_id=p.product_id,
                detail={"quantity": p.quantity, "source_site": p.source_site, "partner_id": p.partner_id,
                        "scheduled": p.scheduled.isoformat(), "why": p.why, "category": p.category})
            # Also for a request found again: a run that died after the row and before the
            # record leaves the record owed (keyed, so never made twice).
            if (store.get(rid) or {}).get("status") in ("pending", "approved"):
                self._create_record(call, rid)
            self.advance(call, rid, dispatch)
            made.append({"request_id": rid, "created": created, "kind": p.kind, "rule": routing.rule,
                         "product_id": p.product_id})
        return made

    def _create_record(self, call: Call, request_id: int) -> int:
        req = store.get(request_id)
        assert req is not None
        if req["record"]["id"]:
            return int(req["record"]["id"])
        d, origin = req["detail"], f"siteops-approval-{request_id}"
        model = req["record"]["model"]
        if req["kind"] == TRANSFER:
            central = self._warehouse(self.registry.get(str(d["source_site"])))
            wh = self._warehouse(self.site)
            values: dict[str, Any] = {
                "picking_type_id": m2o_id(central["int_type_id"]), "location_id": m2o_id(central["lot_stock_id"]),
                "location_dest_id": m2o_id(wh["lot_stock_id"]), "origin": origin,
                "scheduled_date": f"{d['scheduled']} 08:00:00",
                "move_ids": [(0, 0, {"product_id": req["product_id"], "product_uom_qty": d["quantity"],
                                     "location_id": m2o_id(central["lot_stock_id"]),
                                     "location_dest_id": m2o_id(wh["lot_stock_id"])})]}
        else:
            wh = self._warehouse(self.site)
            values = {"partner_id": d["partner_id"], "picking_type_id": m2o_id(wh["in_type_id"]), "origin": origin,
                      "date_planned": f"{d['scheduled']} 08:00:00",
                      "order_line": [(0, 0, {"product_id": req["product_id"], "product_qty": d["quantity"],
                                             "price_unit": round(req["amount"] / d["quantity"], 4) if d["quantity"]
                                             else 0.0, "date_planned": f"{d['scheduled']} 08:00:00"})]}

        def find() -> int | None:
            found = self.odoo.search(model, [("origin", "=", origin)], limit=1)
            return found[0] if found else None

        record_id = int(call(f"approval:{request_id}:record",
                             lambda: self.odoo.ensure_created(model, values, key=origin, ref_field="origin")[0],
                             check=find))
        store.set_record(request_id, model, record_id, created_by=siteops_login())
        return record_id

    # -- human requests -------------------------------------------------------------------

    def intake(self, call: Call, dispatch: Dispatch) -> dict[str, int]:
        """Requests for what people drafted above the thresholds (once per record)."""
        wh = self._warehouse(self.site)
        made = 0
        orders = self.odoo.search_read("purchase.order", [("state", "=", "to approve"),
                                                          ("picking_type_id.warehouse_id", "=", wh["id"])],
                                       ["id", "amount_total", "currency_id", "currency_rate", "user_id", "create_uid",
                                        "partner_id", "order_line"])
        for o in orders:
            if store.search(record_model="purchase.order", record_id=int(o["id"])):
                continue
            category, vendor_class = "", ""
            lines = self.odoo.read("purchase.order.line", list(o["order_line"] or [])[:1], ["product_id"])
            if lines and m2o_id(lines[0]["product_id"]):
                prod = self.odoo.read("product.product", [m2o_id(lines[0]["product_id"])], ["categ_id"])
                category = (m2o_name(prod[0]["categ_id"]) or "") if prod else ""
            partner = m2o_id(o["partner_id"])
            if partner:
                vendor_class = str(self.odoo.read("res.partner", [partner], ["x_vendor_class"])[0]
                                   .get("x_vendor_class") or "")
            amount = company_amount(o)
            foreign: dict[str, Any] = {}
            if float(o.get("currency_rate") or 1) != 1:
                foreign = {"currency": m2o_name(o.get("currency_id")) or "",
                           "amount_in_currency": float(o["amount_total"] or 0)}
            made += self._human(call, dispatch, "purchase", "purchase.order", int(o["id"]), o, amount, 0.0,
                                category, vendor_class, extra=foreign)
        quants = self.odoo.search_read("stock.quant", [("inventory_quantity_set", "=", True),
                                                       ("location_id.warehouse_id", "=", wh["id"])],
                                       ["id", "product_id", "inventory_diff_quantity", "user_id", "create_uid"])
        costs = {int(p["id"]): p for p in self.odoo.read(
            "product.product", sorted({p for p in (m2o_id(q["product_id"]) for q in quants) if p}),
            ["standard_price", "categ_id"])} if quants else {}
        for q in quants:
            if store.search(record_model="stock.quant", record_id=int(q["id"])):
                continue
            product = costs.get(m2o_id(q["product_id"]) or 0, {})
            diff = float(q["inventory_diff_quantity"] or 0)
            made += self._human(call, dispatch, "adjustment", "stock.quant", int(q["id"]), q,
                                abs(diff) * float(product.get("standard_price") or 0), diff,
                                (m2o_name(product.get("categ_id")) or ""), "",
                                chatter=["product.product", m2o_id(q["product_id"])])
        return {"human_requests": made}

    def _human(self, call: Call, dispatch: Dispatch, kind: str, model: str, record_id: int, row: Mapping[str, Any],
               amount: float, quantity: float, category: str, vendor_class: str,
               chatter: list[Any] | None = None, extra: Mapping[str, Any] | None = None) -> int:
        routing = self._route(rules.Document(kind, self.site.code, amount, quantity, category, vendor_class))
        if not routing.tiers:
            return 0  # below every threshold: Odoo's own flow, nothing for siteops to approve
        requester = self._login(row.get("user_id")) or self._login(row.get("create_uid")) or "unknown"
        rid, created = store.create_request(
            site=self.site.code, kind=kind, requested_by=requester, record_model=model, record_id=record_id,
            created_by=self._login(row.get("create_uid")), routing=routing, amount=round(amount, 2),
            open_key=f"record:{model}:{record_id}",
            detail={"quantity": quantity, "category": category, **({"chatter": chatter} if chatter else {}),
                    **(extra or {})})
        self.advance(call, rid, dispatch)
        return int(created)

    # -- decisions ------------------------------------------------------------------------

    def advance(self, call: Call, request_id: int, dispatch: Dispatch) -> dict[str, Any]:
        """Do what the request is owed in Odoo now: its pending tier's activity, or its outcome."""
        req = store.get(request_id)
        if req is None or not req["record"]["id"]:
            return {"request_id": request_id, "done": "nothing (no record yet)"}
        if req["status"] == "pending":
            tier = next(t for t in req["tiers"] if t["status"] == "pending")
            if tier["activity_id"] is None:
                self._open_tier(call, req, tier)
            return {"request_id": request_id, "done": f"tier {tier['group']} pending"}
        if req["applied_at"] is None and req["status"] in ("approved", "rejected"):
            return {"request_id": request_id, "done": self._apply(call, req, dispatch)}
        return {"request_id": request_id, "done": "nothing"}

    def _open_tier(self, call: Call, req: Mapping[str, Any], tier: Mapping[str, Any]) -> None:
        model, rid = req["chatter"]["model"], int(req["chatter"]["id"])
        delegations = store.active_delegations()
        people = [delegations.get(a, a) for a in tier["approvers"]]
        # The activity goes to the first approver who may decide (SoD) and exists in Odoo.
        earlier = [t["decided_by"] for t in req["tiers"] if t["decided_by"]]
        blocked = {req["requested_by"], req["created_by"], *earlier}
        user = next((u for u in (self.user_id(p) for p in people if p not in blocked) if u), None)
        summary = f"Approval #{req['id']}: {req['kind']}, tier {tier['seq'] + 1} ({tier['group']})"
        deadline = (tier["deadline"] or utcnow().isoformat())[:10]
        note = (f"Routed by rule {req['rule']} ({req['rule_why']}). Approvers: {', '.join(tier['approvers'])}. "
                "Decide by marking this activity done; the first word of the feedback is the decision. "
                f"Or: siteops approvals decide {req['id']} --as LOGIN.")

        def find() -> int | None:
            found = self.odoo.search("mail.activity", [("res_model", "=", model), ("res_id", "=", rid),
                                                       ("summary", "=", summary)], limit=1)
            return found[0] if found else None

        activity = int(call(f"approval:tier:{tier['id']}:activity:{tier['activity_round']}",
                            lambda: self.odoo.schedule_activity(model, rid, summary, user_id=user, deadline=deadline,
                                                                note=note)[0], check=find))
        store.set_activity(int(tier["id"]), activity)

    def _apply(self, call: Call, req: Mapping[str, Any], dispatch: Dispatch) -> str:
        model, rid, kind, request_id = req["record"]["model"], int(req["record"]["id"]), req["kind"], req["id"]
        key = f"approval:{request_id}:apply"
        if req["status"] == "approved":
            if kind == TRANSFER:
                call(key, lambda: self.odoo.call(model, "action_confirm", [rid]) and
                     self.odoo.call(model, "action_assign", [rid]),
                     check=lambda: self._state(model, rid) not in ("draft",) or None)
                what = "transfer confirmed"
            elif kind == PURCHASE:
                def confirm() -> bool:
                    if self._state(model, rid) in ("draft", "sent"):
                        self.odoo.call(model, "button_confirm", [rid])
                    if self._state(model, rid) == "to approve":
                        self.odoo.call(model, "button_approve", [rid])
                    return True

                call(key, confirm, check=lambda: self._state(model, rid) in ("purchase", "done") or None)
                if self._state(model, rid) not in ("purchase", "done"):
                    # button_approve skips, without an error, an order its user may not approve.
                    raise PermanentError(f"purchase.order {rid} is still {self._state(model, rid)!r} after "
                                         "button_approve: siteops's Odoo user is not a Purchase Manager",
                                         system="odoo", operation="approvals.apply")
                task_id = dispatch(EDI_TASK, [self.site.code, rid])
                what = f"purchase order confirmed; EDI dispatch {'enqueued ' + task_id if task_id else 'pending'}"
            else:
                call(key, lambda: self.odoo.call(model, "action_apply_inventory", [rid]),
                     check=lambda: not self.odoo.read(model, [rid], ["inventory_quantity_set"])[0]
                     ["inventory_quantity_set"] or None)
                what = "inventory adjustment applied"
            note = f"Approved (request #{request_id}, rule {req['rule']}): {what}."
        else:
            if kind == TRANSFER:
                call(key, lambda: self.odoo.call(model, "action_cancel", [rid]),
                     check=lambda: self._state(model, rid) == "cancel" or None)
            elif kind == PURCHASE:
                call(key, lambda: self.odoo.call(model, "button_cancel", [rid]),
                     check=lambda: self._state(model, rid) == "cancel" or None)
            else:
                call(key, lambda: self.odoo.write(model, [rid], {"inventory_quantity_set": False}) or True,
                     check=lambda: not self.odoo.read(model, [rid], ["inventory_quantity_set"])[0]
                     ["inventory_quantity_set"] or None)
            decider: dict[str, Any] = next((t for t in req["tiers"] if t["status"] == "rejected"), {})
            what = "cancelled"
            note = f"Rejected by {decider.get('decided_by')} (request #{request_id}, tier {decider.get('group')})."
        chatter = req["chatter"]
        call(f"approval:{request_id}:note", lambda: self.odoo.post_note(chatter["model"], int(chatter["id"]), note),
             on_unknown="repeat")
        store.mark_applied(int(request_id), what)
        return what

    def _state(self, model: str, rid: int) -> str:
        rows = self.odoo.read(model, [rid], ["state"])
        return str(rows[0]["state"]) if rows else "gone"

    def poll_activities(self, dispatch: Dispatch, call: Call) -> dict[str, int]:
        """Pending tiers whose activity was marked done in Odoo: the feedback is the decision."""
        decided = refused = 0
        for tier in store.pending_tiers(self.site.code):
            if not tier["activity_id"] or not tier["record"]["id"]:
                continue
            if self.odoo.search("mail.activity", [("id", "=", tier["activity_id"])], limit=1):
                continue  # still open
            model, rid = tier["chatter"]["model"], int(tier["chatter"]["id"])
            messages = self.odoo.search_read("mail.message", [("model", "=", model), ("res_id", "=", rid),
                                                              ("message_type", "=", "notification")],
                                             ["body", "author_id"], order="id desc", limit=10)
            verdict, author = None, None
            for m in messages:
                text = html.unescape(_TAGS.sub(" ", str(m.get("body") or "")))
                text = text.split("Feedback:", 1)[-1]
                verdict = rules.parse_feedback(text)
                if verdict:
                    author = m2o_id(m.get("author_id"))
                    break
            users = self.odoo.search_read("res.users", [("partner_id", "=", author)], ["login"], limit=1) \
                if author else []
            if not verdict or not users:
                store.reopen_tier(int(tier["id"]))  # done without a decision: a new activity is owed
                continue
            try:
                decide(int(tier["request_id"]), str(users[0]["login"]), verdict == "approve", via="odoo")
                decided += 1
            except rules.Refused as exc:
                refused += 1
                call(f"approval:tier:{tier['id']}:refused:{tier['activity_id']}",
                     lambda m=model, r=rid, exc=exc: self.odoo.post_note(m, r, f"Decision refused: {exc.reason}"),
                     on_unknown="repeat")
                store.reopen_tier(int(tier["id"]))
        return {"decided": decided, "refused": refused}

    def sync(self, call: Call, dispatch: Dispatch) -> dict[str, Any]:
        result: dict[str, Any] = self.poll_activities(dispatch, call)
        result.update(self.replenish(call, dispatch))
        result.update(self.intake(call, dispatch))
        advanced = 0
        for r in store.search(site=self.site.code, status="pending"):
            tier = next((t for t in r["tiers"] if t["status"] == "pending"), None)
            if tier is not None and not tier["activity_id"] and r["record"]["id"]:
                self.advance(call, int(r["id"]), dispatch)
                advanced += 1
        for request_id in store.unapplied(self.site.code):
            self.advance(call, request_id, dispatch)
            advanced += 1
        result["advanced"] = advanced
        return result

    def escalate(self, call: Call, tier_id: int) -> dict[str, Any]:
        """Escalate one overdue tier: a note on the record and an activity for the group's
        escalation user, once (the Odoo effects are keyed; the store marks it once)."""
        tier = store.tier(tier_id)
        if tier is None or tier["escalated_at"] is not None or tier["status"] != "pending":
            return {"tier_id": tier_id, "escalated": False}
        model, rid = tier["chatter"]["model"], int(tier["chatter"]["id"] or 0)
        if rid:
            note = (f"Approval #{tier['request_id']} tier {tier['seq'] + 1} ({tier['group']}) is past its deadline "
                    f"{tier['deadline']}: escalated to {tier['escalate_to']}.")
            call(f"approval:tier:{tier_id}:escalate:note", lambda: self.odoo.post_note(model, rid, note),
                 on_unknown="repeat")
            user = self.user_id(tier["escalate_to"])
            summary = f"Escalated approval #{tier['request_id']}: tier {tier['seq'] + 1} ({tier['group']})"
            call(f"approval:tier:{tier_id}:escalate:activity",
                 lambda: self.odoo.schedule_activity(model, rid, summary, user_id=user, note=note)[0],
                 on_unknown="repeat")
        return {"tier_id": tier_id, "escalated": store.mark_escalated(tier_id)}


def decide(request_id: int, person: str, approve: bool, *, via: str = "cli", comment: str = "",
           now: dt.datetime | None = None) -> dict[str, Any]:
    """One decision, checked by segregation of duties (raises `rules.Refused`, audited)."""
    from siteops.observability.metrics import APPROVAL_DECISIONS

    try:
        result = store.decide(request_id, person, approve, delegations=store.active_delegations(now),
                              authorize=rules.authorize, via=via, comment=comment, now=now)
    except rules.Refused as exc:
        APPROVAL_DECISIONS.labels(via, f"refused_{exc.code}").inc()
        raise
    APPROVAL_DECISIONS.labels(via, result["outcome"]).inc()
    return result
