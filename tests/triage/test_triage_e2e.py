"""Messages through the real ingress to a real CW worker: classified, linked to real demo
records in the Odoo simulator, routed as an activity to the owning site, the uncertain one
held for review, a correction recorded — and the personal data nowhere but the store."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tests.conftest import REDIS_PORT, TMP, _free_port, poll
from tests.ingress.conftest import Served

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TOKEN = "triage-test-token-0123456789"
PERSONAL = ("jane.doe@example.com", "555 0199", "Jane Doe", "Pemberton")


@pytest.fixture(scope="module")
def odoo() -> Iterator[Any]:
    from siteops.config.sites import get_registry
    from siteops.connectors.odoo import reset_client
    from siteops.sim.odoo import start

    sim = start(port=_free_port(), seed=5, scale=0.3, sites=get_registry(), truth_path=TMP / "triage-truth.json")
    keys = ("SITEOPS_ODOO_URL", "SITEOPS_ODOO_DB", "SITEOPS_ODOO_LOGIN", "SITEOPS_ODOO_PASSWORD")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(SITEOPS_ODOO_URL=sim.url, SITEOPS_ODOO_DB="demo", SITEOPS_ODOO_LOGIN="admin",
                      SITEOPS_ODOO_PASSWORD="admin")
    reset_client()
    yield sim
    sim.stop()
    for k, v in saved.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    reset_client()


def _demo_records() -> tuple[dict[str, Any], dict[str, Any]]:
    """A NORTH sale order and a SOUTH delivery, as the data set made them."""
    from siteops.connectors.odoo import get_client

    o = get_client("CW")
    wh = {r["code"]: r["id"] for r in o.search_read("stock.warehouse", [], ["code"])}
    [so] = o.search_read("sale.order", [("warehouse_id", "=", wh["NORTH"]), ("state", "=", "sale")],
                         ["name", "partner_id"], limit=1)
    [out] = o.search_read("stock.picking", [("picking_type_id.warehouse_id", "=", wh["SOUTH"]),
                                            ("picking_type_code", "=", "outgoing")], ["name"], limit=1)
    return so, out


def test_messages_through_the_ingress_are_triaged_linked_routed_and_kept_private(
        stack: Any, odoo: Any) -> None:
    import redis
    from sqlalchemy import select

    from siteops.celery_app import app as celery
    from siteops.cli import app as cli
    from siteops.config.sites import get_registry
    from siteops.connectors.odoo import get_client
    from siteops.ingress.app import Ingress, build_app, celery_publish
    from siteops.store import messages as store
    from siteops.store.db import get_engine
    from siteops.store.models import JobRun
    from siteops.triage.model import get_classifier

    get_classifier()  # trained once here, into the var/ the worker shares: it loads the cache
    so, out = _demo_records()
    worker = stack.worker("CW", concurrency=2)
    ingress = Served(build_app(Ingress(publish=celery_publish(celery), site_codes=get_registry().codes,
                                       secrets={"messages": TOKEN}, hooks={})))
    try:
        def post(mid: str, subject: str, body: str, token: str = TOKEN) -> httpx.Response:
            return httpx.post(f"{ingress.url}/messages", headers={"Authorization": f"Bearer {token}"}, timeout=10,
                              json={"from": "Jane Doe <jane.doe@example.com>", "subject": subject, "body": body,
                                    "received": "2026-11-30T09:00:00Z", "source": "portal", "message_id": mid})

        assert post("m-0", "x", "y", token="wrong").status_code == 401
        short = post("m-1", f"Short delivery on {so['name']}",
                     "We ordered 50 clamps and only 40 arrived, 10 missing. Jane Doe, 12 Pemberton Lane, "
                     "call +1 555 0199 or jane.doe@example.com")
        wrong = post("m-2", f"Return {out['name']}", "wrong size fittings delivered, please send a return label")
        vague = post("m-3", "Problem", "not what we expected. Jane Doe 555 0199")
        assert [r.status_code for r in (short, wrong, vague)] == [200, 200, 200]
        assert post("m-1", "again", "the same message id").json()["outcome"] == "duplicate"
        ids = [r.json()["message"] for r in (short, wrong, vague)]
        assert not any(p in json.dumps([r.json() for r in (short, wrong, vague)]) for p in PERSONAL)

        rows = poll(lambda: (r := [store.get(i) for i in ids]) and all(m.status != "new" for m in r) and r, 90,
                    "the CW worker to triage the three messages")
        m_short, m_wrong, m_vague = rows

        # Linked to the real records, routed to the site that owns them, as an Odoo to-do.
        assert (m_short.label, m_short.status, m_short.site) == ("shortage", "routed", "NORTH")
        assert (m_wrong.label, m_wrong.status, m_wrong.site) == ("return", "routed", "SOUTH")
        model, res_id, activity_id = m_short.activity.split(",")
        assert (model, int(res_id)) == ("sale.order", so["id"])
        [act] = get_client("CW").read("mail.activity", [int(activity_id)], ["summary", "note", "user_id"])
        assert f"#{m_short.id}]" in act["summary"] and so["name"] in act["summary"] and "shortage" in act["summary"]
        assert act["user_id"][1].lower().startswith("north")
        assert m_wrong.activity.startswith("stock.picking,")
        # The uncertain one waits for a person, with no activity anywhere.
        assert (m_vague.status, m_vague.activity, m_vague.site) == ("review", None, "CW")
        assert m_vague.confidence < 0.6
        assert m_vague.priority < m_short.priority

        # The queue, highest priority first; a person's decision is recorded and counted.
        listed = CliRunner().invoke(cli, ["triage", "--json"])
        assert listed.exit_code == 0, listed.output
        queue = json.loads(listed.output)
        assert [q["priority"] for q in queue] == sorted((q["priority"] for q in queue), reverse=True)
        person = "delivery_issue" if m_vague.label != "delivery_issue" else "other"
        decided = CliRunner().invoke(cli, ["triage", "decide", str(m_vague.id), "--class", person, "--by", "bob"])
        assert decided.exit_code == 0 and "corrected from" in decided.output, decided.output
        assert [(c.predicted, c.corrected, c.decided_by) for c in store.corrections(m_vague.id)] == \
            [(m_vague.label, person, "bob")]
        shown = CliRunner().invoke(cli, ["triage", "show", str(m_short.id), "--json"])
        assert json.loads(shown.output)["body"].startswith("We ordered 50"), "the store keeps the text"

        # Personal data: in the store only — not in Odoo, the worker's log, Redis (task
        # messages, results, events Flower reads) or the audit rows.
        assert not any(p in act["summary"] + act["note"] for p in PERSONAL)
        log = worker.log_text()
        assert "classify_message" in log and not any(p in log for p in PERSONAL)
        blobs = []
        for db in range(16):  # the broker's database and the result backend's
            r = redis.Redis(port=REDIS_PORT, db=db)
            for key in r.scan_iter(count=1000):
                kind = r.type(key)
                if kind == b"string":
                    blobs.append(r.get(key) or b"")
                elif kind == b"list":
                    blobs.extend(r.lrange(key, 0, -1))
                elif kind == b"hash":
                    blobs.extend(v for kv in r.hgetall(key).items() for v in kv)
                elif kind == b"zset":
                    blobs.extend(r.zrange(key, 0, -1))
        redis_text = b"\n".join(blobs).decode("utf-8", "replace")
        assert any(f'"message": {i}' in redis_text or f"'message': {i}" in redis_text for i in ids), \
            "the task results are in Redis (else this check proves nothing)"
        assert not any(p in redis_text for p in PERSONAL)
        with get_engine().connect() as conn:
            audit = [dict(r) for r in conn.execute(select(JobRun.__table__).where(
                JobRun.task_name == "siteops.triage.classify_message")).mappings()]
        assert len(audit) >= 3 and not any(p in json.dumps(audit, default=str) for p in PERSONAL)
    finally:
        ingress.stop()


def test_the_demo_feed_cites_real_records_of_every_site(odoo: Any) -> None:
    from siteops.connectors.odoo import get_client
    from siteops.services.triage import Linker, site_for_warehouse
    from siteops.triage.references import find_references
    from siteops.triage.samples import TEMPLATES, demo_messages, demo_records

    records = demo_records(get_client("CW"), per_site=1)
    messages = demo_messages(records, len(TEMPLATES) * 2)
    assert len({m["message_id"] for m in messages}) == len(messages)
    linker = Linker(get_client("CW"))
    sites = set()
    for m in messages:
        for ref in find_references(f"{m['subject']}\n{m['body']}"):
            found = linker.link(ref)
            assert found is not None, ref
            sites.add(site_for_warehouse(found["warehouse"]))
    assert sites == {"CW", "NORTH", "SOUTH", "EAST", "WEB"}
