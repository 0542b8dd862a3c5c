"""The ingress's HTTP contract: authenticated, bounded, shape-checked, and 200 only once the
task message is in the broker (a real Redis), on the site's queue."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from tests.ingress.conftest import TOKEN

pytestmark = pytest.mark.integration
PICKING = {"_action": "Notify siteops(#3)", "_id": 42, "_model": "stock.picking", "id": 42, "state": "assigned"}


@pytest.fixture()
def broker(redis_server: Any) -> Any:
    import redis

    from tests.conftest import REDIS_PORT

    client = redis.Redis(port=REDIS_PORT)
    for key in ("site.NORTH", "site.SOUTH", "platform"):
        client.delete(key)
    return client


def queued(broker: Any, queue: str) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in broker.lrange(queue, 0, -1)]


def counted(outcome: str, route: str = "odoo") -> float:
    return REGISTRY.get_sample_value("siteops_ingress_requests_total", {"route": route, "outcome": outcome}) or 0.0


def test_an_odoo_event_is_in_the_sites_queue_before_the_answer(serve: Any, broker: Any) -> None:
    ingress = serve()
    # Site codes match case-insensitively: an operator typing the URL by hand writes "north".
    answer = httpx.post(f"{ingress.url}/hooks/odoo/north/{TOKEN}", json=PICKING, timeout=5)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["site"] == "NORTH" and body["model"] == "stock.picking" and body["record_id"] == 42
    [message] = queued(broker, "site.NORTH")  # there already: no polling needed
    assert message["headers"]["task"] == "siteops.events.record_changed"
    assert message["headers"]["id"] == body["task_id"]
    args, kwargs, _ = json.loads(__import__("base64").b64decode(message["body"]))
    assert args == ["NORTH", "stock.picking", 42] and kwargs == {}
    assert message["headers"]["eta"], "the worker waits for Odoo's commit before re-reading"
    assert queued(broker, "site.SOUTH") == [] and queued(broker, "platform") == []


def test_a_wrong_or_missing_token_is_refused_and_counted(serve: Any, broker: Any) -> None:
    ingress = serve()
    before = counted("unauthorized")
    for token in ("wrong", TOKEN[:-1], TOKEN + "x"):
        assert httpx.post(f"{ingress.url}/hooks/odoo/NORTH/{token}", json=PICKING, timeout=5).status_code == 401
    # An unknown site with a wrong token says nothing about which sites exist.
    answer = httpx.post(f"{ingress.url}/hooks/odoo/NOPE/wrong", json=PICKING, timeout=5)
    assert answer.status_code == 401 and "NORTH" not in answer.text
    assert counted("unauthorized") == before + 4
    assert queued(broker, "site.NORTH") == []


def test_an_unknown_site_is_refused_naming_the_known_ones(serve: Any, broker: Any) -> None:
    ingress = serve()
    answer = httpx.post(f"{ingress.url}/hooks/odoo/NOPE/{TOKEN}", json=PICKING, timeout=5)
    assert answer.status_code == 404
    assert "NOPE" in answer.json()["error"] and "NORTH" in answer.json()["error"]


@pytest.mark.parametrize("body, field", [
    (b"hello", "JSON"),
    (b'"hello"', "JSON object"),
    (b"[1, 2]", "JSON object"),
    (b'{"_id": 4}', "_model"),
    (b'{"_model": "stock.picking"}', "_id"),
    (b'{"_model": "stock.picking", "_id": "4"}', "_id"),
    (b'{"_model": "stock.picking", "_id": true}', "_id"),
    (b'{"_model": "res.partner", "_id": 4}', "not watched"),
    (b"\xff\xfe\x00junk", "JSON"),
])
def test_a_body_of_the_wrong_shape_is_refused_naming_the_field(serve: Any, broker: Any, body: bytes,
                                                               field: str) -> None:
    ingress = serve()
    answer = httpx.post(f"{ingress.url}/hooks/odoo/NORTH/{TOKEN}", content=body, timeout=5,
                        headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert field in answer.json()["error"]
    assert queued(broker, "site.NORTH") == []


def test_bodies_over_a_megabyte_are_refused_declared_or_streamed(serve: Any, broker: Any) -> None:
    ingress = serve()
    big = b'{"_model": "stock.picking", "_id": 1, "pad": "' + b"x" * (1024 * 1024) + b'"}'
    declared = httpx.post(f"{ingress.url}/hooks/odoo/NORTH/{TOKEN}", content=big, timeout=10)
    assert declared.status_code == 413

    def chunks() -> Any:  # no Content-Length: the limit holds while the body streams in
        for i in range(0, len(big), 65536):
            yield big[i:i + 65536]

    streamed = httpx.post(f"{ingress.url}/hooks/odoo/NORTH/{TOKEN}", content=chunks(), timeout=10)
    assert streamed.status_code == 413
    assert queued(broker, "site.NORTH") == []


def test_a_broker_that_does_not_take_the_message_gets_503_not_200(serve: Any) -> None:
    from celery import Celery

    from tests.conftest import _free_port

    down = Celery(broker=f"redis://127.0.0.1:{_free_port()}/0")  # nothing listens there
    down.conf.broker_connection_timeout = 0.5
    from siteops.ingress.app import celery_publish

    ingress = serve(publish=celery_publish(down))
    answer = httpx.post(f"{ingress.url}/hooks/odoo/NORTH/{TOKEN}", json=PICKING, timeout=10)
    assert answer.status_code == 503 and answer.json()["outcome"] == "broker_unavailable"


def test_a_mounted_hook_gets_the_raw_body_and_headers(serve: Any) -> None:
    seen: list[tuple[bytes, dict[str, str]]] = []

    def hook(body: bytes, headers: Any) -> tuple[int, dict[str, Any]]:
        seen.append((body, dict(headers)))
        return (401, {"outcome": "bad_signature"}) if "x-hmac-signature" not in headers else (200, {})

    ingress = serve(hooks={"carrier-test": hook})
    before = counted("bad_signature", route="carrier-test")
    assert httpx.post(f"{ingress.url}/hooks/carrier-test", content=b"{}", timeout=5).status_code == 401
    ok = httpx.post(f"{ingress.url}/hooks/carrier-test", content=b'{"a":1}', timeout=5,
                    headers={"X-Hmac-Signature": "hmac-sha256-hex=00"})
    assert ok.status_code == 200 and seen[-1][0] == b'{"a":1}'
    assert seen[-1][1]["x-hmac-signature"] == "hmac-sha256-hex=00"
    assert counted("bad_signature", route="carrier-test") == before + 1
    assert httpx.post(f"{ingress.url}/hooks/nothing-here", content=b"{}", timeout=5).status_code == 404
