"""Demo messages for `make run`: customers writing about real demo records, through the ingress.

    from siteops.triage.samples import post_samples
    post_samples("http://127.0.0.1:8070", token, n=12)   # Odoo from SITEOPS_ODOO_*

Each message cites a record of the demo data set (a sale order, a delivery, a purchase
order of some site), so the queue shows them linked and routed to that site; a few are
deliberately vague and wait for a person. Message ids are stable (`demo-<n>@siteops`),
so feeding twice stores nothing new.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

# (subject, body) with {so}, {out}, {po} for a sale order, a delivery and a purchase order.
TEMPLATES: tuple[tuple[str, str], ...] = (
    ("Short delivery on {so}", "Hi, we ordered 24 junction boxes and only 18 came. Please send the rest. Regards, "
                               "Alex Morgan, 0161 555 0147"),
    ("Return request {out}", "The ball valves delivered are 20mm, we ordered 25mm. How do we send them back?"),
    ("Where is {so}?", "It was promised for yesterday and the tracking has not moved for three days."),
    ("URGENT out of stock", "We have run out of copper elbows for the job on {so}, need 100 by tomorrow morning."),
    ("Invoice copy", "Could you send me a copy of the invoice for {so}? Thanks, accounts@customer.example"),
    ("Damaged in transit {out}", "Two boxes arrived crushed and the driver left them outside in the rain."),
    ("Missing items", "Delivery {out} came without the mounting brackets listed on the packing slip."),
    ("Please expedite {po}", "We are completely out and the line is stopped, please bring {po} forward."),
    ("Problem", "not what we expected. Jane Doe, 555 0199"),
    ("Wrong colour", "Cable on {so} is blue, we ordered brown. We'd like to exchange the two drums."),
    ("Your delivery", "late, incomplete and the wrong size"),
    ("Delivery slot for {out}", "Our warehouse only accepts booked slots, please rebook before 3pm."),
)


def demo_records(odoo: Any, per_site: int = 2) -> list[dict[str, str]]:
    """Per site: names of a confirmed sale order, an outgoing delivery and a purchase order."""
    rows = []
    for wh in odoo.search_read("stock.warehouse", [], ["id", "code"], order="id"):
        sos = odoo.search_read("sale.order", [("warehouse_id", "=", wh["id"]), ("state", "=", "sale")], ["name"],
                               order="id", limit=per_site)
        outs = odoo.search_read("stock.picking", [("picking_type_id.warehouse_id", "=", wh["id"]),
                                                  ("picking_type_code", "=", "outgoing")], ["name"],
                                order="id", limit=per_site)
        pos = odoo.search_read("purchase.order", [("picking_type_id.warehouse_id", "=", wh["id"])], ["name"],
                               order="id", limit=per_site)
        for i in range(min(len(sos), len(outs), len(pos))):
            rows.append({"so": sos[i]["name"], "out": outs[i]["name"], "po": pos[i]["name"]})
    return rows


def demo_messages(records: list[dict[str, str]], n: int) -> list[dict[str, str]]:
    now = dt.datetime.now(dt.UTC)
    out = []
    for i in range(n):
        subject, body = TEMPLATES[i % len(TEMPLATES)]
        names = records[i % len(records)] if records else {"so": "S00001", "out": "CW/OUT/00001", "po": "P00001"}
        out.append({"from": f"buyer{i + 1}@customer.example", "subject": subject.format(**names),
                    "body": body.format(**names), "received": (now - dt.timedelta(minutes=5 * (n - i))).isoformat(),
                    "source": "portal", "message_id": f"demo-{i + 1}@siteops"})
    return out


def post_samples(ingress_url: str, token: str, n: int = 12, odoo: Any | None = None) -> list[dict[str, Any]]:
    """POST `n` demo messages to the ingress; returns the ingress's answers (ids, no text)."""
    if odoo is None:
        from siteops.connectors.odoo import get_client

        odoo = get_client("")
    answers = []
    with httpx.Client(timeout=10) as client:
        for message in demo_messages(demo_records(odoo), n):
            r = client.post(f"{ingress_url.rstrip('/')}/messages", json=message,
                            headers={"Authorization": f"Bearer {token}"})
            r.raise_for_status()
            answers.append(r.json())
    return answers
