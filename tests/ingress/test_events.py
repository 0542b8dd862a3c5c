"""Odoo's webhook server action -> the ingress -> `siteops.events.record_changed` on the site's
worker, which re-reads the record; a dropped webhook is found by the catch-up scan; a
replayed webhook announces nothing new."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import odoo_simulator, poll
from tests.ingress.conftest import TOKEN

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def odoo() -> Iterator[Any]:
    with odoo_simulator(seed=5, scale=0.3, truth="events-truth.json") as sim:
        yield sim


@pytest.fixture(scope="module")
def north(stack: Any, odoo: Any) -> Any:
    return stack.worker("NORTH", concurrency=2)


def seen_row(model: str, record_id: int) -> Any:
    from sqlalchemy import select

    from siteops.store.db import get_engine
    from siteops.store.events import OdooEventSeen

    t = OdooEventSeen.__table__
    with get_engine().connect() as conn:
        return conn.execute(select(t).where(t.c.site == "NORTH", t.c.model == model,
                                            t.c.record_id == record_id)).mappings().one_or_none()


def north_internal_pickings(limit: int) -> list[int]:
    from siteops.connectors.odoo import get_client

    client = get_client("NORTH")
    [wh] = client.search_read("stock.warehouse", [("code", "=", "NORTH")], ["id"], limit=1)
    return client.search("stock.picking", [("picking_type_id.warehouse_id", "=", wh["id"]),
                                           ("picking_type_code", "=", "internal")], limit=limit)


def touch(picking: int, origin: str) -> None:
    from siteops.connectors.odoo import get_client

    get_client("NORTH").write("stock.picking", [picking], {"origin": origin})


def catch_up() -> dict[str, int]:
    from siteops.celery_app import app

    app.loader.import_default_modules()
    return app.tasks["siteops.events.catch_up"].apply_async(args=["NORTH"]).get(timeout=60)["announced"]


def test_webhook_to_worker_then_catch_up_of_a_dropped_one(serve: Any, odoo: Any, north: Any) -> None:
    ingress = serve()
    first, dropped = north_internal_pickings(2)
    assert catch_up()["stock.picking"] == 0, "the first pass only marks where watching starts"

    # 1. The Odoo automation rule posts to the ingress; NORTH's worker re-reads the picking.
    httpx.post(f"{odoo.url}/__sim__/webhooks", timeout=5, json={
        "model": "stock.picking", "url": f"{ingress.url}/hooks/odoo/NORTH/{TOKEN}", "name": "siteops",
        "fields": ["state"]}).raise_for_status()
    touch(first, "WEBHOOK-1")
    row = poll(lambda: seen_row("stock.picking", first), 30, "the worker to handle the webhook's event")
    assert row["outcome"] == "nothing_to_do"  # an internal transfer asks for no follow-up
    handled_version = row["write_date"]

    # 2. Odoo drops a webhook (receiver down, 1 s timeout, failures ignored): the rule is
    # gone, the change is not. The catch-up announces exactly that record.
    httpx.delete(f"{odoo.url}/__sim__/webhooks", timeout=5).raise_for_status()
    touch(dropped, "DROPPED-1")
    assert seen_row("stock.picking", dropped) is None
    announced = catch_up()
    assert announced["stock.picking"] == 1, announced
    poll(lambda: seen_row("stock.picking", dropped), 30, "the caught-up event to be handled")

    # 3. Nothing new since: the next pass announces nothing, although both records are
    # still at or after the watermark.
    assert catch_up()["stock.picking"] == 0

    # 4. A replayed webhook (Odoo retried by hand, a proxy resent it) re-reads the same
    # version: the record's handled version does not change and nothing new is announced.
    body = {"_action": "siteops(#1)", "_id": first, "_model": "stock.picking", "id": first, "state": "assigned"}
    replays = [httpx.post(f"{ingress.url}/hooks/odoo/NORTH/{TOKEN}", json=body, timeout=5) for _ in range(2)]
    assert [r.status_code for r in replays] == [200, 200]
    for r in replays:
        poll(lambda r=r: f"record_changed[{r.json()['task_id']}] succeeded" in north.log_text(), 30,
             "the replayed event to be handled")
    assert seen_row("stock.picking", first)["write_date"] == handled_version
    assert catch_up()["stock.picking"] == 0


def test_an_event_for_another_sites_record_is_not_acted_on(serve: Any, odoo: Any, north: Any) -> None:
    from siteops.celery_app import app
    from siteops.connectors.odoo import get_client

    client = get_client("SOUTH")
    [wh] = client.search_read("stock.warehouse", [("code", "=", "SOUTH")], ["id"], limit=1)
    [south_picking] = client.search("stock.picking", [("picking_type_id.warehouse_id", "=", wh["id"])], limit=1)
    app.loader.import_default_modules()
    task = app.tasks["siteops.events.record_changed"]
    assert task.apply_async(args=["NORTH", "stock.picking", south_picking]).get(timeout=30)["outcome"] == "other_site"
    assert task.apply_async(args=["NORTH", "stock.picking", 10**8]).get(timeout=30)["outcome"] == "gone"
