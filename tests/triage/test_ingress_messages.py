"""POST /messages: authenticated like the other ingress routes, bounded, checked, and the body
never echoed; retention of message bodies by the housekeeping job."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from tests.ingress.conftest import Served

TOKEN = "messages-token-0123456789"


def _client(accepted: list[Any]) -> Served:
    from siteops.ingress.app import Ingress, build_app

    def accept(inbound: Any) -> tuple[int, bool, str | None]:
        accepted.append(inbound)
        return 7, len(accepted) == 1, "task-1"

    return Served(build_app(Ingress(publish=lambda *a: "x", site_codes=("CW",), secrets={"messages": TOKEN},
                                    hooks={}, accept_message=accept)))


def test_messages_route_authenticates_checks_and_stores_once() -> None:
    accepted: list[Any] = []
    served = _client(accepted)
    c = httpx.Client(base_url=served.url, timeout=10)
    body = {"from": "jane@example.com", "subject": "Late", "body": "where is S00042", "message_id": "m-1"}
    assert c.post("/messages", json=body).status_code == 401
    assert c.post("/messages", json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    ok = c.post("/messages", json=body, headers={"X-Siteops-Token": TOKEN})
    assert ok.status_code == 200 and ok.json() == {"outcome": "accepted", "message": 7, "task_id": "task-1"}
    again = c.post("/messages", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert again.json()["outcome"] == "duplicate"
    assert accepted[0].sender == "jane@example.com" and accepted[0].body == "where is S00042"
    bad = c.post("/messages", json={"subject": 5}, headers={"X-Siteops-Token": TOKEN})
    assert bad.status_code == 400 and "field subject" in bad.json()["error"]
    huge = c.post("/messages", content=b"{" + b" " * (1024 * 1024 + 1), headers={"X-Siteops-Token": TOKEN})
    assert huge.status_code == 413
    assert len(accepted) == 2
    c.close()
    served.stop()


def test_the_retention_job_deletes_old_bodies_only(store_ready: None) -> None:
    from siteops.store import messages as store
    from siteops.tasks.triage import triage_retention

    now = dt.datetime.now(dt.UTC)
    old = store.add(message_id=f"old-{now.timestamp()}", source="portal", sender="jane@example.com", subject="s",
                    body="call me on 555 0199", raw="raw", received_at=now - dt.timedelta(days=91)).id
    new = store.add(message_id=f"new-{now.timestamp()}", source="portal", sender="jane@example.com", subject="s",
                    body="recent", raw="raw", received_at=now - dt.timedelta(days=89)).id
    assert triage_retention(None) >= 1
    assert store.get(old).body is None and store.get(old).sender is None and store.get(old).purged_at is not None
    assert store.get(new).body == "recent"
