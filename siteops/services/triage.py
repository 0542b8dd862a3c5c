"""Triage of inbound customer messages: classify, link, prioritise, route (or hold for review).

The flow for one stored message (`classify_message`, run by `siteops.triage.classify_message`
with only the row id in its arguments):

1. the classifier (siteops.triage.model) gives a class, a calibrated confidence and the
   words that drove it;
2. references in the text (siteops.triage.references) are looked up in Odoo; the first
   one found names the owning warehouse, hence the site (else the policy's default site);
3. the priority (siteops.rules.priority) adds the customer's tier and the linked order's
   value and promised date;
4. below the policy's confidence threshold the message waits for a person (`review`);
   otherwise it is routed: an Odoo activity on the linked record (chatter models only)
   for the site's responsible user, with the class, the confidence, the references and
   the siteops message id — and NO text from the message (the store keeps the text for
   its retention period; Odoo's chatter would keep it forever).

The model recommends; it never approves, refunds, confirms or moves stock: the only write
to Odoo is the to-do for a person.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter

from siteops.config.sites import get_registry
from siteops.connectors.errors import MissingRecord, PermanentError
from siteops.rules.priority import message_priority
from siteops.store import messages as store
from siteops.triage.model import get_classifier
from siteops.triage.references import Reference, find_references

log = logging.getLogger(__name__)

DEFAULTS = {"triage_confidence_threshold": 0.6, "triage_default_site": "CW", "triage_retention_days": 90}

TRIAGED = Counter("siteops_triage_messages_total", "Messages triaged, by site, class and outcome (routed, review).",
                  ["site", "label", "outcome"])
CORRECTIONS = Counter("siteops_triage_corrections_total", "Human corrections of the triage class.",
                      ["predicted", "corrected"])


def policy(name: str) -> Any:
    return get_registry().defaults.get(name, DEFAULTS[name])


def default_site() -> str:
    code = str(policy("triage_default_site"))
    get_registry().get(code)  # an unknown code fails here, naming the known sites
    return code


@dataclass
class Analysis:
    label: str
    confidence: float
    probabilities: dict[str, float]
    evidence: list[str]
    references: list[dict[str, Any]]
    site: str
    priority: float
    reasons: list[str]
    needs_review: bool
    model_version: str
    target: tuple[str, int] | None = field(default=None)

    def as_dict(self) -> dict[str, Any]:
        return {"class": self.label, "confidence": self.confidence, "evidence": self.evidence,
                "references": self.references, "site": self.site, "priority": self.priority,
                "priority_reasons": self.reasons, "needs_review": self.needs_review,
                "probabilities": self.probabilities, "model_version": self.model_version}


# --- linking ---------------------------------------------------------------------------


def _m2o(value: Any) -> int | None:
    if isinstance(value, list | tuple) and value:
        return int(value[0])
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value else None


def _dt(value: Any) -> dt.datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        return dt.datetime.strptime(value[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
    except ValueError:
        try:
            return dt.datetime.strptime(value[:10], "%Y-%m-%d").replace(tzinfo=dt.UTC)
        except ValueError:
            return None


class Linker:
    """Looks references up in Odoo (read only) and says which site owns each record."""

    def __init__(self, odoo: Any) -> None:
        self.odoo = odoo
        self._warehouses: dict[int, str] | None = None
        self._type_wh: dict[int, int | None] = {}

    def _warehouse_code(self, wh_id: int | None) -> str | None:
        if wh_id is None:
            return None
        if self._warehouses is None:
            rows = self.odoo.search_read("stock.warehouse", [], ["id", "code"])
            self._warehouses = {int(r["id"]): str(r["code"]) for r in rows}
        return self._warehouses.get(wh_id)

    def _type_warehouse(self, type_id: int | None) -> int | None:
        if type_id is None:
            return None
        if type_id not in self._type_wh:
            rows = self.odoo.read("stock.picking.type", [type_id], ["warehouse_id"])
            self._type_wh[type_id] = _m2o(rows[0]["warehouse_id"]) if rows else None
        return self._type_wh[type_id]

    def link(self, ref: Reference) -> dict[str, Any] | None:
        o = self.odoo
        if ref.kind in ("picking", "tracking"):
            where = ("name" if ref.kind == "picking" else "carrier_tracking_ref", "=", ref.value)
            rows = o.search_read("stock.picking", [where], ["name", "picking_type_id", "partner_id", "sale_id",
                                                             "scheduled_date", "state"], limit=1)
            if not rows:
                return None
            r = rows[0]
            value, promised = None, _dt(r.get("scheduled_date"))
            sale = _m2o(r.get("sale_id"))
            if sale:
                so = o.read("sale.order", [sale], ["amount_total", "commitment_date"])
                if so:
                    value = float(so[0].get("amount_total") or 0) or None
                    promised = _dt(so[0].get("commitment_date")) or promised
            wh = self._warehouse_code(self._type_warehouse(_m2o(r.get("picking_type_id"))))
            return self._found(ref, "stock.picking", r, wh, _m2o(r.get("partner_id")), value, promised)
        if ref.kind == "sale":
            rows = o.search_read("sale.order", [("name", "=", ref.value)],
                                 ["name", "warehouse_id", "partner_id", "amount_total", "commitment_date", "state"],
                                 limit=1)
            if not rows:
                return None
            r = rows[0]
            return self._found(ref, "sale.order", r, self._warehouse_code(_m2o(r.get("warehouse_id"))),
                               _m2o(r.get("partner_id")), float(r.get("amount_total") or 0) or None,
                               _dt(r.get("commitment_date")))
        if ref.kind == "purchase":
            rows = o.search_read("purchase.order", [("name", "=", ref.value)],
                                 ["name", "picking_type_id", "amount_total", "date_planned", "state"], limit=1)
            if not rows:
                return None
            r = rows[0]
            wh = self._warehouse_code(self._type_warehouse(_m2o(r.get("picking_type_id"))))
            # The partner of a PO is the vendor: no customer tier from it.
            return self._found(ref, "purchase.order", r, wh, None, float(r.get("amount_total") or 0) or None,
                               _dt(r.get("date_planned")))
        return None

    def _found(self, ref: Reference, model: str, row: dict[str, Any], warehouse: str | None, partner: int | None,
               value: float | None, promised: dt.datetime | None) -> dict[str, Any]:
        return {"kind": ref.kind, "ref": ref.value, "model": model, "res_id": int(row["id"]),
                "name": str(row.get("name") or ref.value), "warehouse": warehouse, "partner_id": partner,
                "value": value, "promised": promised.isoformat() if promised else None}

    def tier(self, partner_id: int | None) -> str | None:
        """The customer's tier (`x_tier` on res.partner); None where the field does not exist."""
        if partner_id is None:
            return None
        try:
            rows = self.odoo.read("res.partner", [partner_id], ["x_tier", "commercial_partner_id"])
        except PermanentError:  # an Odoo without the custom field: no tier, not a failure
            return None
        if not rows:
            return None
        return str(rows[0].get("x_tier") or "") or None


def site_for_warehouse(code: str | None) -> str | None:
    if code is None:
        return None
    for site in get_registry():
        if site.odoo_warehouse == code:
            return site.code
    return None


# --- analysis (shared by the task and `siteops triage classify`) -------------------------


def analyse(subject: str, body: str, *, odoo: Any | None, now: dt.datetime) -> Analysis:
    text = f"{subject}\n{body}"
    clf = get_classifier()
    p = clf.predict(text)
    refs = find_references(text)
    linked: list[dict[str, Any]] = []
    site: str | None = None
    tier = value = promised = None
    target: tuple[str, int] | None = None
    linker = Linker(odoo) if odoo is not None else None
    for ref in refs:
        found = linker.link(ref) if linker is not None else None
        if found is None:
            linked.append({"kind": ref.kind, "ref": ref.value, "model": ref.model, "found": False,
                           "looked_up": linker is not None})
            continue
        found["site"] = site_for_warehouse(found["warehouse"])
        found["found"] = True
        linked.append(found)
        if target is None:  # the first record cited names the site and carries the activity
            target = (found["model"], found["res_id"])
            site = found["site"]
            value = found["value"]
            promised = dt.datetime.fromisoformat(found["promised"]) if found["promised"] else None
        if tier is None and linker is not None:
            tier = linker.tier(found["partner_id"])
    score = message_priority(p.label, text, tier=tier, order_value=value, promised=promised, now=now)
    threshold = float(policy("triage_confidence_threshold"))
    return Analysis(label=p.label, confidence=p.confidence, probabilities=p.probabilities, evidence=p.evidence,
                    references=linked, site=site or default_site(), priority=score.value,
                    reasons=list(score.reasons), needs_review=p.confidence < threshold,
                    model_version=clf.version, target=target)


# --- the task's service ----------------------------------------------------------------


def marker(message_db_id: int) -> str:
    return f"[siteops triage #{message_db_id}]"


def classify_message(task: Any, site: str, message_db_id: int, *, odoo: Any,
                     now: Callable[[], dt.datetime]) -> dict[str, Any]:
    """Classify, link, prioritise and route one stored message. The result holds ids, the
    class and business references only: never the sender, subject or body."""
    msg = store.get(message_db_id)
    if msg is None:
        raise MissingRecord(f"triage message {message_db_id} is not in the store", system="siteops",
                            operation="triage")
    if msg.body is None and not msg.subject:
        return {"message": message_db_id, "skipped": "purged (retention) before it was classified"}
    if msg.status in ("review", "routed", "decided"):
        return {"message": message_db_id, "skipped": f"already {msg.status}"}
    a = analyse(msg.subject, msg.body or "", odoo=odoo, now=now())
    status = "review" if a.needs_review else "routed"
    store.save_triage(message_db_id, status="review" if a.needs_review else "new", site=a.site, label=a.label,
                      confidence=a.confidence, evidence=a.evidence, refs=a.references, priority=a.priority,
                      reasons=a.reasons, model_version=a.model_version)
    activity: int | None = None
    if not a.needs_review:
        activity = _route(task, odoo, a, message_db_id)
        if activity is None:
            # Nothing in Odoo to hang the to-do on: the site's queue (`siteops triage --site`) holds it.
            store.save_triage(message_db_id, status="routed", site=a.site, label=a.label, confidence=a.confidence,
                              evidence=a.evidence, refs=a.references, priority=a.priority, reasons=a.reasons,
                              model_version=a.model_version)
    TRIAGED.labels(a.site, a.label, status).inc()
    log.info("triage message %d: %s (%.2f) -> %s at %s", message_db_id, a.label, a.confidence, status, a.site)
    return {"message": message_db_id, "class": a.label, "confidence": a.confidence, "status": status,
            "site": a.site, "priority": a.priority, "references": [r["ref"] for r in a.references if r.get("found")],
            "activity_id": activity}


def _route(task: Any, odoo: Any, a: Analysis, message_db_id: int) -> int | None:
    from siteops.services.alerts import CHATTER_MODELS, recipient

    if a.target is None or a.target[0] not in CHATTER_MODELS:
        return None
    model, res_id = a.target
    site = get_registry().get(a.site)
    login = recipient(site, "opened")
    users = odoo.search_read("res.users", [("login", "=", login)], ["id"], limit=1)
    user_id = int(users[0]["id"]) if users else None
    refs = ", ".join(r["ref"] for r in a.references if r.get("found"))
    summary = f"{marker(message_db_id)} customer {a.label.replace('_', ' ')} ({a.confidence:.0%}) {refs}"[:250]
    note = (f"<p>siteops triage: a customer message classified <b>{a.label}</b> with confidence "
            f"{a.confidence:.2f} (priority {a.priority:g}; {'; '.join(a.reasons)}). Evidence: "
            f"{', '.join(a.evidence) or '-'}. References: {refs or '-'}.</p><p>A recommendation, not a decision: "
            f"read it with <code>siteops triage show {message_db_id}</code>.</p>")
    deadline = (dt.date.today() + dt.timedelta(days=1 if a.priority >= 60 else 2)).isoformat()

    def existing() -> int | None:
        rows = odoo.search_read("mail.activity", [("res_model", "=", model), ("res_id", "=", res_id),
                                                  ("summary", "=like", f"{marker(message_db_id)}%")], ["id"], limit=1)
        return int(rows[0]["id"]) if rows else None

    activity_id = task.idempotent_call(
        f"odoo:{a.site}:triage:{message_db_id}",
        lambda: odoo.schedule_activity(model, res_id, summary, note=note, user_id=user_id, deadline=deadline)[0],
        check=existing,
    )
    store.set_activity(message_db_id, model, res_id, int(activity_id))
    return int(activity_id)


def decide(message_db_id: int, label: str, by: str) -> store.Correction:
    from siteops.triage.model import CLASSES

    if label not in CLASSES:
        raise ValueError(f"--class: {label!r} is not one of {', '.join(CLASSES)}")
    c = store.decide(message_db_id, label, by)
    CORRECTIONS.labels(c.predicted or "none", label).inc()
    return c
