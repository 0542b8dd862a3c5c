"""Webhook alerts: signed, retried with backoff when the receiver fails, delivered once."""

from __future__ import annotations

import os
import uuid

import pytest

from siteops.connectors import webhook
from tests.conftest import poll

pytestmark = pytest.mark.integration
SECRET = "test-webhook-secret"


@pytest.fixture(scope="module")
def receiver():
    from siteops.sim.webhook import Receiver, serve

    r = Receiver(secret=SECRET)
    server = serve(r)
    yield r, f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


@pytest.fixture(scope="module")
def worker_with_webhook(stack, receiver):
    _, url = receiver
    os.environ.update(SITEOPS_WEBHOOK_URL=url, SITEOPS_WEBHOOK_SECRET=SECRET)
    try:
        yield stack.worker("CW", concurrency=2)
    finally:
        os.environ.pop("SITEOPS_WEBHOOK_URL")
        os.environ.pop("SITEOPS_WEBHOOK_SECRET")


def make_finding(site: str = "CW") -> int:
    from siteops.rules.findings import Observation, Plan
    from siteops.store import findings

    obs = Observation(site=site, kind="aging_transfers", rule="aging_transfer", model="stock.picking",
                      record_id=int(uuid.uuid4().int % 10**6), record_name="CW/INT/00001", severity=2,
                      title="CW/INT/00001 open 100 h", rule_version="1", params={"transfer_aging_hours": 24})
    return findings.apply(Plan(open=[obs])).opened[0]


def test_signature_round_trip_and_tampering() -> None:
    body = b'{"a":1}'
    sig = webhook.sign(SECRET, "1700000000", body)
    assert webhook.verify(SECRET, "1700000000", body, sig, now=1700000010)
    assert not webhook.verify(SECRET, "1700000000", b'{"a":2}', sig, now=1700000010)
    assert not webhook.verify("other", "1700000000", body, sig, now=1700000010)
    assert not webhook.verify(SECRET, "1700000000", body, sig, now=1700009999)  # replayed later


def test_a_receiver_that_rejects_the_first_calls_still_gets_the_alert_once(worker_with_webhook, receiver) -> None:
    from siteops.store import audit
    from siteops.tasks.alerts import send_webhook

    r, _ = receiver
    r.fail_first = 2
    finding_id = make_finding()
    result = send_webhook.delay("CW", finding_id, "opened")
    assert result.get(timeout=60)["status"] == 200
    delivery = f"CW:{finding_id}:opened"
    assert r.deliveries[delivery]["finding"]["id"] == finding_id
    assert r.deliveries[delivery]["event"] == "finding.opened"
    assert [a["delivery"] for a in r.attempts].count(delivery) == 3  # two 503s, then 200
    assert all(a["signed"] for a in r.attempts)
    assert [run.state for run in audit.runs_for(result.id)] == ["retrying", "retrying", "succeeded"]
    # Replaying the same alert does not deliver it again: the operation is recorded.
    again = send_webhook.delay("CW", finding_id, "opened")
    assert again.get(timeout=30)["status"] == 200
    assert [a["delivery"] for a in r.attempts].count(delivery) == 3


def test_an_alert_the_receiver_keeps_failing_is_dead_lettered(worker_with_webhook, receiver) -> None:
    from siteops.store import audit
    from siteops.tasks.alerts import send_webhook

    r, _ = receiver
    r.fail_first = 1000
    try:
        finding_id = make_finding()
        result = send_webhook.delay("CW", finding_id, "opened")
        with pytest.raises(Exception, match="503"):
            result.get(timeout=90)
        dead = poll(lambda: [d for d in audit.list_dead_letters(site="CW") if d.task_id == result.id], 10,
                    "the dead letter")
        assert dead[0].reason == "retries_exhausted" and dead[0].args == ["CW", finding_id, "opened"]
    finally:
        r.fail_first = 0
