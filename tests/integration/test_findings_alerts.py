"""Findings stay one per problem and alerts go out exactly once, with real workers and the Odoo simulator.

Six concurrent scans of one site and kind; a worker killed between a scan's commit and its
alert publish; an alert whose Odoo record was deleted; a chatter note whose reply timed out.
The module runs on a store of its own (the sweep looks at every unpaid debt in it).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter

import pytest

from tests.conftest import TMP, odoo_simulator, poll, use_store, webhook_receiver

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SECRET = "findings-test-webhook-secret"
SITE = "NORTH"
ODOO_TIMEOUT = 5.0


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request):
    """A store of this module's own, on SQLite and then on PostgreSQL (the workers inherit it)."""
    from tests.conftest import postgres_database

    if request.param == "sqlite":
        with use_store(f"sqlite:///{TMP / f'findings-{uuid.uuid4().hex[:8]}.db'}") as url:
            yield url
        return
    with postgres_database("siteops_findings") as (pg_url, _), use_store(pg_url) as url:
        yield url


@pytest.fixture(scope="module")
def odoo(store):
    """A fresh simulated Odoo per store: finding ids (and so the markers) start again at 1."""
    with odoo_simulator(seed=23, truth="truth-findings.json", SITEOPS_ODOO_TIMEOUT=str(ODOO_TIMEOUT)) as sim:
        yield sim


@pytest.fixture(scope="module")
def hooks(store):
    with webhook_receiver(SECRET) as receiver:
        yield receiver


@pytest.fixture(scope="module")
def worker(stack, store, odoo, hooks):
    wp = stack.worker(SITE, concurrency=6)
    yield wp
    wp.stop()  # the next store's worker must be the only one on site.NORTH


def scan_task(kind: str):
    from siteops.celery_app import app

    app.loader.import_default_modules()
    return app.tasks[f"siteops.scan.{kind}"]


def markers(odoo_client, model: str, ids: list[int]) -> Counter[int]:
    """How many activities and notes carry each finding's marker."""
    rows = odoo_client.search_read(model, [("summary" if model == "mail.activity" else "body", "like", "[siteops #")],
                                   ["summary" if model == "mail.activity" else "body"])
    found: Counter[int] = Counter()
    for r in rows:
        text = r.get("summary") or r.get("body") or ""
        fid = int(text.split("#", 1)[1].split("]", 1)[0])
        if fid in ids:
            found[fid] += 1
    return found


def active(kind: str):
    from siteops.store import findings

    return [f for status in ("open", "acknowledged") for f in findings.search(site=SITE, kind=kind, status=status)]


def dead_letters() -> list:
    from siteops.store import audit

    return audit.list_dead_letters()


def test_six_concurrent_scans_keep_one_finding_and_one_activity_per_problem(worker, odoo, hooks) -> None:
    from siteops.connectors.odoo import get_client

    pending = [scan_task("aging_transfers").delay(SITE) for _ in range(6)]
    results = [r.get(timeout=180) for r in pending]
    ran = [r for r in results if "skipped" not in r]
    assert ran, results
    # Those that found the (site, kind) busy say so and by whom.
    assert all("another scan of this site and kind is running" in r["skipped"] for r in results if r not in ran)
    found = active("aging_transfers")
    assert Counter(f.fingerprint for f in found).most_common(1)[0][1] == 1
    assert {f.record_id for f in found} == set(odoo.server.truth["sites"][SITE]["aging_transfers"]["ids"])
    ids = [f.id for f in found]
    client = get_client()
    poll(lambda: len(markers(client, "mail.activity", ids)) == len(ids), 60, "an activity per finding")
    poll(lambda: all(f"{SITE}:{i}:opened" in hooks.deliveries for i in ids), 60, "a webhook per finding")
    assert set(markers(client, "mail.activity", ids).values()) == {1}
    assert set(markers(client, "mail.message", ids).values()) == {1}
    wanted = {f"{SITE}:{i}:opened" for i in ids}
    assert Counter(a["delivery"] for a in hooks.attempts if a["delivery"] in wanted) == dict.fromkeys(wanted, 1)
    assert dead_letters() == []


def test_a_worker_killed_between_commit_and_publish_still_alerts_once_through_the_sweep(
        worker, odoo, hooks, remote) -> None:
    from siteops.celery_app import app
    from siteops.connectors.odoo import get_client
    from siteops.services.alerts import sweep_owed_alerts
    from siteops.store import alert_debts, audit

    remote.set("crash:before-alert-publish", "1")
    result = scan_task("stock_anomalies").delay(SITE)
    # The pool process died after the commit; the message came back and ran again, saw
    # the findings as known, and so published nothing itself.
    summary = result.get(timeout=180)
    assert not remote.exists("crash:before-alert-publish"), "the crash point never fired"
    assert [r.state for r in audit.runs_for(result.id)] == ["lost", "succeeded"] and summary["opened"] == 0
    found = active("stock_anomalies")
    ids = [f.id for f in found]
    assert {f.model for f in found} >= {"stock.quant", "stock.move"}
    assert all(d.paid_at is None for i in ids for d in alert_debts.debts_of(i))
    client = get_client()
    assert markers(client, "mail.activity", ids) == Counter()

    assert sweep_owed_alerts(app, grace=dt.timedelta(0)) >= 2 * len(ids)
    poll(lambda: all(d.paid_at is not None for i in ids for d in alert_debts.debts_of(i)), 90,
         "every owed alert to be paid")
    assert sweep_owed_alerts(app, grace=dt.timedelta(0)) == 0  # nothing owed any more
    assert {d.outcome for i in ids for d in alert_debts.debts_of(i)} == {"sent"}
    acts = client.search_read("mail.activity", [("summary", "like", "[siteops #")], ["summary", "res_model"])
    mine = [a for a in acts if int(a["summary"].split("#", 1)[1].split("]", 1)[0]) in ids]
    assert Counter(int(a["summary"].split("#", 1)[1].split("]", 1)[0]) for a in mine) == {i: 1 for i in ids}
    # Quants have no chatter in Odoo: their alerts sit on the product (moves: picking or product).
    assert {a["res_model"] for a in mine} <= {"product.product", "stock.picking"}
    assert set(markers(client, "mail.message", ids).values()) == {1}
    assert all([a["delivery"] for a in hooks.attempts].count(f"{SITE}:{i}:opened") == 1 for i in ids)
    assert dead_letters() == []


def make_finding(model: str, record_id: int, channels: tuple[str, ...] = ("odoo",)) -> int:
    from siteops.rules.findings import Observation, Plan
    from siteops.store import findings

    obs = Observation(site=SITE, kind="stock_anomalies" if model != "stock.picking" else "aging_transfers",
                      rule=f"test_{uuid.uuid4().hex[:8]}", model=model, record_id=record_id,
                      record_name=f"{model} {record_id}", severity=2, title=f"test finding on {model} {record_id}",
                      rule_version="1", params={})
    return findings.apply(Plan(open=[obs]), channels=channels).opened[0]


def test_an_alert_about_a_deleted_record_is_moot_not_a_dead_letter(worker, odoo) -> None:
    from siteops.connectors.odoo import get_client
    from siteops.store import alert_debts
    from siteops.tasks.alerts import notify_odoo

    client = get_client()
    picking = client.search("stock.picking", [("state", "=", "done")], limit=1)[0]
    quant = client.search("stock.quant", [("quantity", ">", 0)], limit=1)[0]
    gone = {"stock.picking": picking, "stock.quant": quant}
    ids = {model: make_finding(model, rid) for model, rid in gone.items()}
    for model, rid in gone.items():
        client.call(model, "unlink", [rid])
    for model, finding_id in ids.items():
        out = notify_odoo.delay(SITE, finding_id, "opened").get(timeout=60)
        assert "no longer exists" in out["moot"]
        [debt] = alert_debts.debts_of(finding_id)
        assert debt.outcome == "moot" and debt.paid_at is not None and model in debt.detail
    assert dead_letters() == []


def test_a_note_whose_reply_timed_out_is_not_posted_twice(worker, odoo) -> None:
    from siteops.connectors.odoo import get_client
    from siteops.store import audit
    from siteops.tasks.alerts import notify_odoo

    client = get_client()
    picking = client.search("stock.picking", [("state", "=", "assigned")], limit=1)[0]
    finding_id = make_finding("stock.picking", picking)
    odoo.server.log.clear()
    # Odoo posts the note, but its answer arrives after the connector gave up waiting.
    odoo.server.faults.set(methods=["message_post"], reply_latency=ODOO_TIMEOUT + 2)
    try:
        result = notify_odoo.delay(SITE, finding_id, "opened")
        out = result.get(timeout=90)
    finally:
        odoo.server.faults.reset()
    assert [r.state for r in audit.runs_for(result.id)] == ["retrying", "succeeded"]
    # The held answer is logged when it is finally sent; the retry asked, and did not post.
    poll(lambda: odoo.server.log.count(model_method="message_post"), ODOO_TIMEOUT + 10, "the held reply")
    assert odoo.server.log.count(model_method="message_post") == 1
    notes = client.search_read("mail.message", [("model", "=", "stock.picking"), ("res_id", "=", picking),
                                                ("body", "like", f"[siteops #{finding_id}]")], ["id"])
    assert [n["id"] for n in notes] == [out["message_id"]]
    assert dead_letters() == []


def test_odoo_refuses_chatter_on_models_without_it_as_real_odoo_does(odoo) -> None:
    """Why quant and move alerts go elsewhere: no mail.thread, no note and no activity."""
    from siteops.connectors.errors import PermanentError
    from siteops.connectors.odoo import get_client

    client = get_client()
    quant = client.search("stock.quant", [], limit=1)[0]
    with pytest.raises(PermanentError, match="AttributeError"):
        client.post_note("stock.quant", quant, "hello")
    with pytest.raises(PermanentError, match="message_subscribe"):
        client.schedule_activity("stock.quant", quant, "hello")
    product = client.search("product.product", [], limit=1)[0]
    _, created = client.schedule_activity("product.product", product, "[test] on the product")
    assert created and client.post_note("product.product", product, "[test] a note") > 0
