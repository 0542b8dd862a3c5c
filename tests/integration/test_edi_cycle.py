"""The EDI cycle with a real worker, the Odoo simulator and the simulated supplier:
PO confirmed -> 850 / ORDERS once -> 997 + 855 + 856 (CONTRL + ORDRSP + DESADV) -> Odoo updated;
a second delivery of the same file changes nothing; bad files are quarantined with their reason
while the batch goes on and the worker lives."""

from __future__ import annotations

import json
import os
import shutil
import uuid

import pytest

from tests.conftest import TMP, environment, odoo_simulator, poll, use_store

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SITE = "NORTH"


@pytest.fixture(scope="module")
def odoo():
    from siteops.config.settings import get_settings
    from siteops.connectors.odoo import get_client

    # Mailboxes and a store of its own: other tests in this process (approvals) send orders
    # to the same partners, and this module counts files and exchanges.
    own = TMP / f"edi-cycle-{uuid.uuid4().hex[:6]}"
    own.mkdir()
    with environment(SITEOPS_VAR_DIR=str(own)), use_store(f"sqlite:///{own / 'siteops.db'}"), \
            odoo_simulator(seed=11, scale=0.3):
        yield get_client(SITE)
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def worker(stack, odoo):
    return stack.worker(SITE, concurrency=2)


def confirmed_po(odoo, vendor_ref: str) -> int:
    vendor = odoo.search("res.partner", [("ref", "=", vendor_ref)], limit=1)[0]
    ptype = odoo.search("stock.picking.type", [("warehouse_id.code", "=", SITE), ("code", "=", "incoming")],
                        limit=1)[0]
    products = odoo.search("product.product", [], limit=3)
    po_id = odoo.create("purchase.order", {
        "partner_id": vendor, "picking_type_id": ptype, "company_id": 1, "date_order": "2026-11-30 09:00:00",
        "date_planned": "2026-12-10 12:00:00",
        "order_line": [(0, 0, {"product_id": p, "name": f"item {i}", "product_qty": 10.0 + i, "price_unit": 4.5,
                               "date_planned": "2026-12-10 12:00:00"}) for i, p in enumerate(products)]})
    odoo.call("purchase.order", "button_confirm", [po_id])
    return po_id


def run(task: str, *args):
    from siteops.celery_app import app

    app.loader.import_default_modules()
    return app.tasks[task].delay(*args).get(timeout=90)


def mailbox(partner: str):
    from siteops.connectors.edi.transport import mailbox_root

    return mailbox_root(partner)


def lines(odoo, po_id):
    order = odoo.read("purchase.order", [po_id], ["order_line", "date_planned"])[0]
    rows = odoo.read("purchase.order.line", order["order_line"], ["product_qty", "date_planned"])
    return order["date_planned"], sorted((r["id"], r["product_qty"], r["date_planned"]) for r in rows)


@pytest.mark.parametrize("vendor,partner,order_type,answers", [
    ("V0001", "ACME", "850", ("997", "855", "856")),
    ("V0002", "EUROPA", "ORDERS", ("CONTRL", "ORDRSP", "DESADV")),
])
def test_full_cycle_with_the_simulated_supplier(worker, odoo, vendor, partner, order_type, answers):
    from siteops.config.edi import get_edi
    from siteops.config.settings import get_settings
    from siteops.sim.edi import Supplier
    from siteops.store import exchanges, findings

    po_id = confirmed_po(odoo, vendor)
    assert po_id in run("siteops.edi.scan_orders", SITE)["dispatched"]
    sent = poll(lambda: exchanges.find_outbound_for_po(po_id), 60, "the order exchange")
    sent = poll(lambda: (x := exchanges.get(sent.id)) and x.state == "sent" and x, 60, "the order sent")
    assert sent.doc_type == order_type and (mailbox(partner) / "out" / sent.filename).exists()
    # Dispatching again (a webhook, a replay) sends nothing new.
    again = run("siteops.edi.dispatch_po", SITE, po_id)
    assert again["exchange"] == sent.id
    assert len([p for p in (mailbox(partner) / "out").iterdir() if p.name.startswith(order_type)]) == \
        len([x for x in exchanges.search(partner=partner) if x.doc_type == order_type])
    notes = odoo.search_read("mail.message", [("model", "=", "purchase.order"), ("res_id", "=", po_id)], ["body"])
    assert sum("siteops edi order" in (n["body"] or "") for n in notes) == 1

    supplier = Supplier(get_edi(), get_edi().get(partner), get_settings().var / "edi" / partner)
    dropped = supplier.poll()
    assert [d.split("_", 1)[1].split(".")[0] for d in dropped] == list(answers)
    before = lines(odoo, po_id)
    summary = run("siteops.edi.poll_inbound", SITE)
    assert sorted(summary["applied"]) == sorted(dropped) and not summary["quarantined"]

    planned, after = lines(odoo, po_id)
    assert after[0][1] == before[1][0][1] or after[1][1] != before[1][1][1]  # 2nd line cut unless accepted as is
    changed = [a for a, b in zip(after, before[1], strict=True) if a != b]
    if changed:  # the supplier changed line 2 (qty - 1, date + 3 days) and rejected line 3
        assert after[1][1] == before[1][1][1] - 1 and after[2][1] == 0.0
        assert planned != before[0]
        opened = [f for f in findings.search(site=SITE, kind="po_exceptions") if f.record_id == po_id]
        assert {f.rule for f in opened} == {"supplier_changed", "supplier_rejected"}
    picking = odoo.search_read("stock.picking", [("purchase_id", "=", po_id)],
                               ["id", "carrier_tracking_ref", "scheduled_date"])[0]
    assert picking["carrier_tracking_ref"].startswith("SIM")
    assert exchanges.get(sent.id).state == "acknowledged" and exchanges.get(sent.id).responded_at
    acks_out = [x for x in exchanges.search(partner=partner, direction="out") if x.doc_type == answers[0]]
    assert len(acks_out) == 2  # we answered the 855/ORDRSP and the 856/DESADV with a 997/CONTRL each

    # The same file delivered a second time (VAN resend) changes nothing.
    archived = mailbox(partner) / "archive" / dropped[1]
    shutil.copy(archived, mailbox(partner) / "in" / f"resend-{dropped[1]}")
    def edi_notes():  # our own notes (the findings' alerts post theirs concurrently)
        rows = odoo.search_read("mail.message", [("res_id", "in", [po_id, picking["id"]])], ["body", "model"])
        return sorted((r["model"], r["body"]) for r in rows if "siteops edi" in (r["body"] or ""))

    messages = edi_notes()
    assert len(messages) == 3  # order sent, acknowledgment applied, ship notice applied
    state = lines(odoo, po_id)
    summary = run("siteops.edi.poll_inbound", SITE)
    assert summary["duplicates"] == [f"resend-{dropped[1]}"] and not summary["applied"]
    assert lines(odoo, po_id) == state
    assert edi_notes() == messages
    assert not list((mailbox(partner) / "in").iterdir())


def test_bad_files_are_quarantined_with_a_reason_and_the_batch_goes_on(worker, odoo):
    from siteops.store import findings

    inbox = mailbox("ACME") / "in"
    inbox.mkdir(parents=True, exist_ok=True)
    good_855 = sorted((mailbox("ACME") / "archive").glob("*_855.edi"))
    bad = {
        "junk.edi": os.urandom(300),
        "utf16.edi": "ISA*00*".encode("utf-16"),
        "truncated.edi": good_855[0].read_bytes()[:-40] if good_855 else b"ISA*00",
        "stranger.edi": (good_855[0].read_text().replace("ACMESUPPLY     ", "SOMEONEELSE    ") if good_855 else
                         "ISA").encode(),
        "dup_control.edi": (good_855[0].read_text().replace("BAK*00*", "BAK*00*").replace("SO-", "XO-")
                            if good_855 else "ISA").encode(),
    }
    for name, data in bad.items():
        (inbox / name).write_bytes(data)
    pid = worker.process.pid
    summary = run("siteops.edi.poll_inbound", SITE)
    assert sorted(summary["quarantined"]) == sorted(bad)
    for name in bad:
        reason = json.loads((mailbox("ACME") / "quarantine" / f"{name}.reason.json").read_text())
        assert reason["code"] and reason["message"] and (mailbox("ACME") / "quarantine" / name).exists()
    codes = {n: json.loads((mailbox("ACME") / "quarantine" / f"{n}.reason.json").read_text())["code"] for n in bad}
    assert codes["junk.edi"] in ("unknown_format", "encoding", "binary")
    assert codes["stranger.edi"] == "unknown_partner"
    assert codes["dup_control.edi"] == "duplicate_control"
    assert codes["truncated.edi"] == "truncated"
    # The partner hears about the file it can be told about (readable envelope, really from it).
    rejects = [p for p in (mailbox("ACME") / "out").glob("997_*.edi") if "AK9*R" in p.read_text()]
    assert len(rejects) == 1 and "AK5*R" in rejects[0].read_text()
    assert not list(inbox.iterdir())
    assert len([f for f in findings.search(site=SITE, kind="edi_quarantine")]) >= len(bad)
    assert worker.alive() and worker.process.pid == pid


def test_an_order_with_no_answer_by_its_deadline_becomes_a_finding_and_an_activity(worker, odoo):
    import datetime as dt

    from siteops.store import exchanges, findings
    from siteops.store.models import utcnow
    from siteops.tasks.edi import sweep_ack_deadlines
    from siteops.worker.housekeeping import JOBS

    po_id = confirmed_po(odoo, "V0001")
    row = exchanges.add(direction="out", partner="ACME", site=SITE, standard="x12", doc_type="850",
                        interchange_control="000999999", group_control="999999", filename="850_late.edi",
                        checksum="late", odoo_model="purchase.order", odoo_id=po_id, business_key="P-LATE",
                        state="sent", ack_due_at=utcnow() - dt.timedelta(minutes=1))
    assert JOBS["edi-ack-deadlines"].fn is sweep_ack_deadlines
    assert sweep_ack_deadlines(None) == 1  # the housekeeping job, called as the platform worker calls it
    assert sweep_ack_deadlines(None) == 0  # once
    assert exchanges.get(row.id).overdue_at is not None
    [finding] = [f for f in findings.search(site=SITE, kind="po_exceptions") if f.rule == "ack_overdue"]
    assert finding.record_id == po_id
    poll(lambda: odoo.search_count("mail.activity", [("res_model", "=", "purchase.order"), ("res_id", "=", po_id),
                                                     ("summary", "=like", f"[siteops #{finding.id}]%")]), 60,
         "the overdue order's activity in Odoo")


def test_a_batch_of_mutated_files_each_ends_archived_or_quarantined(worker, odoo):
    """Zero silent drops at the file level: whatever arrives is applied (archive/) or refused
    (quarantine/ with its reason), through the real task on the real worker."""
    import random

    rng = random.Random(11)
    inbox, box = mailbox("ACME") / "in", mailbox("ACME")
    seeds = sorted((box / "archive").glob("0*.edi"))
    assert seeds
    names = []
    for i in range(40):
        data = bytearray(rng.choice(seeds).read_bytes())
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(data))
            op = rng.choice(["flip", "cut", "insert", "truncate"])
            if op == "flip":
                data[at] = rng.randrange(256)
            elif op == "cut":
                del data[at:at + rng.randint(1, 12)]
            elif op == "insert":
                data[at:at] = rng.choice([b"*", b"~", b"SE*9*0001~", b"\xff", b"HL*1**S~"])
            else:
                del data[at:]
        name = f"mutant-{i:02d}.edi"
        (inbox / name).write_bytes(bytes(data))
        names.append(name)
    summary = run("siteops.edi.poll_inbound", SITE)
    handled = summary["applied"] + summary["quarantined"] + summary["duplicates"]
    assert sorted(handled + summary["other_site"]) == names
    for name in handled:
        assert (box / "archive" / name).exists() or (box / "quarantine" / f"{name}.reason.json").exists(), name
    assert sorted(p.name for p in inbox.iterdir()) == sorted(summary["other_site"])
    for name in summary["other_site"]:
        (inbox / name).unlink()
    assert worker.alive()


def test_an_order_whose_send_failed_goes_out_once_with_the_same_numbers(odoo):
    from siteops.connectors.edi.transport import Mailbox, mailbox_root
    from siteops.connectors.errors import RetryableError
    from siteops.services import edi as service
    from siteops.store import exchanges, operations

    class Flaky(Mailbox):
        failures = 1

        def send(self, name: str, data: bytes) -> None:
            if Flaky.failures:
                Flaky.failures -= 1
                raise RetryableError("mailbox unreachable")
            super().send(name, data)

    def once(key, effect, check=None):
        return operations.run_once(key, effect, check=check, site=SITE, task_name="test", task_id="t-1")

    po_id = confirmed_po(odoo, "V0001")
    box, out = Flaky(mailbox_root("ACME")), mailbox_root("ACME") / "out"
    with pytest.raises(RetryableError):
        service.dispatch_po(SITE, po_id, odoo=odoo, once=once, transport=box)
    first = exchanges.find_outbound_for_po(po_id)
    assert first.state == "new" and not (out / first.filename).exists()
    result = service.dispatch_po(SITE, po_id, odoo=odoo, once=once, transport=box)  # the retry
    again = exchanges.get(first.id)
    assert result["exchange"] == first.id and again.state == "sent"
    assert again.interchange_control == first.interchange_control  # numbers kept, none reallocated
    assert (out / first.filename).read_text("latin-1") == first.details["payload"]
    files = sorted(p.name for p in out.iterdir())
    assert service.dispatch_po(SITE, po_id, odoo=odoo, once=once, transport=box)["exchange"] == first.id
    assert sorted(p.name for p in out.iterdir()) == files
