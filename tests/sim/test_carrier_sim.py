"""The carrier simulator speaks EasyPost well enough for the unmodified official SDK, and its
faults and webhooks behave as a real carrier's would on a bad day."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import easypost
import pytest

from siteops.sim.carrier import CarrierSim
from siteops.sim.carrier.server import PUSH_ATTEMPTS, resend_delay
from tests.conftest import poll

ADDRESS = {"name": "Dock 1", "street1": "100 Depot Road", "city": "Springfield", "zip": "62701", "country": "US"}


@pytest.fixture
def sim() -> Any:
    with CarrierSim(step_seconds=1000) as s:
        yield s


def client(sim: CarrierSim, key: str = "EZTK_test") -> easypost.EasyPostClient:
    """The SDK's client, with its own urllib3 retries off (they would retry 429s behind our back)."""
    from siteops.connectors.carriers.easypost import no_retry_client

    return no_retry_client(key, sim.api_base, 10)


def create(c: easypost.EasyPostClient, reference: str = "NORTH/OUT/00001") -> Any:
    return c.shipment.create(reference=reference, to_address=ADDRESS, from_address=ADDRESS, parcel={"weight": 12.5})


def test_create_buy_once_retrieve_by_id_and_reference_and_list(sim: CarrierSim) -> None:
    c = client(sim)
    shipment = create(c)
    assert shipment.id.startswith("shp_") and len(shipment.rates) == 3 and shipment.tracking_code is None
    bought = c.shipment.buy(shipment.id, rate=shipment.lowest_rate())
    assert bought.tracking_code and bought.postage_label.label_url and bought.tracker.status == "pre_transit"
    with pytest.raises(easypost.errors.InvalidRequestError) as second:
        c.shipment.buy(shipment.id, rate=shipment.lowest_rate())
    assert "SHIPMENT.POSTAGE.EXISTS" in second.value.http_body  # the carrier's own dedupe per shipment
    create(c)  # a second, unbought shipment with the same reference
    by_ref = c.shipment.retrieve(quote("NORTH/OUT/00001", safe=""))
    assert by_ref.id == shipment.id  # the bought one wins
    with pytest.raises(easypost.errors.NotFoundError):
        c.shipment.retrieve("NOPE")
    for i in range(5):
        create(c, f"REF{i}")
    page = c.shipment.all(page_size=3)
    seen = [s.id for s in page["shipments"]]
    while page["has_more"]:
        page = c.shipment.get_next_page(page, page_size=3)
        seen += [s.id for s in page["shipments"]]
    assert len(seen) == len(set(seen)) == 7
    assert [s.id for s in c.shipment.all(purchased=True)["shipments"]] == [shipment.id]


def test_tracking_codes_are_deterministic_and_timelines_scripted(sim: CarrierSim) -> None:
    c = client(sim)
    codes = []
    for i in range(3):
        s = create(c, f"R{i}")
        codes.append(c.shipment.buy(s.id, rate=s.lowest_rate()).tracking_code)
    assert codes == ["9400000000000000000001", "9400000000000000000002", "9400000000000000000003"]
    sim.state.force(codes[0], "exception")
    sim.state.force(codes[1], "returned")
    sim.state.force(codes[2], "delivered")
    sim.state.advance(10_000)  # long after: every script has ended
    trackers = {t.tracking_code: t for t in c.tracker.all(page_size=10)["trackers"]}
    assert [trackers[code].status for code in codes] == ["failure", "return_to_sender", "delivered"]
    assert [d.status for d in trackers[codes[2]].tracking_details] == ["pre_transit", "in_transit",
                                                                      "out_for_delivery", "delivered"]


def test_refuses_keys_it_does_not_know_and_bad_requests(sim: CarrierSim) -> None:
    with pytest.raises(easypost.errors.UnauthorizedError):
        create(client(sim, key="sk_live_nope"))
    create(client(sim, key="EZAK_production"))  # production keys are accepted too
    with pytest.raises(easypost.errors.InvalidRequestError) as bad:
        client(sim).shipment.create(reference="X", to_address={"name": "no street"}, from_address=ADDRESS,
                                    parcel={"weight": 1})
    assert "to_address.street1" in bad.value.http_body


def test_faults_rate_limit_and_the_unknown_outcome(sim: CarrierSim) -> None:
    c = client(sim)
    shipment = create(c)
    sim.faults.set(unknown_rate=1.0, operations=["shipment.buy"])
    with pytest.raises(easypost.errors.InternalServerError):
        c.shipment.buy(shipment.id, rate=shipment.lowest_rate())
    assert c.shipment.retrieve(shipment.id).tracking_code  # ...yet the label was bought
    sim.faults.reset()
    sim.faults.set(rate_limit_per_second=2)
    statuses = []
    for _ in range(6):
        try:
            c.shipment.retrieve(shipment.id)
            statuses.append(200)
        except easypost.errors.RateLimitError:
            statuses.append(429)
    assert statuses.count(200) == 2 and statuses.count(429) == 4
    assert all(e["status"] == 429 for e in sim.log.entries()[-4:])


def hook_receiver(answers: list[int]) -> tuple[ThreadingHTTPServer, list[tuple[int, dict[str, str], bytes]]]:
    """A webhook receiver on a free port answering `answers` in turn (200 once they run out);
    what it received: (status answered, headers, body)."""
    received: list[tuple[int, dict[str, str], bytes]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = answers.pop(0) if answers else 200
            received.append((status, dict(self.headers), body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, received


def test_tracking_events_are_pushed_signed_like_easypost(sim: CarrierSim) -> None:
    server, got = hook_receiver([])
    try:
        c = client(sim)
        c.webhook.create(url=f"http://127.0.0.1:{server.server_address[1]}/hook", webhook_secret="s3cret")
        s = create(c)
        code = c.shipment.buy(s.id, rate=s.lowest_rate()).tracking_code
        poll(lambda: got, 10, "the first tracking event")
        _, headers, body = got[0]
        event = easypost.util.validate_webhook(body, {"X-Hmac-Signature": headers["X-Hmac-Signature"]}, "s3cret")
        assert event["description"] == "tracker.updated" and event["result"]["tracking_code"] == code
        with pytest.raises(easypost.errors.SignatureVerificationError):
            easypost.util.validate_webhook(body.replace(b"pre_transit", b"delivered"),
                                           {"X-Hmac-Signature": headers["X-Hmac-Signature"]}, "s3cret")
        sim.state.force(code, "delivered")
        sim.state.advance(5000)
        poll(lambda: any(json.loads(b)["result"]["status"] == "delivered" for _, _, b in got), 10,
             "the delivered event")
    finally:
        server.shutdown()


def test_an_event_the_receiver_did_not_take_is_sent_again_like_easypost_retries(sim: CarrierSim) -> None:
    # The receiver is down for the first call (a restart, a slow answer).
    server, got = hook_receiver([503, 200])
    try:
        c = client(sim)
        c.webhook.create(url=f"http://127.0.0.1:{server.server_address[1]}/hook", webhook_secret="s3cret")
        s = create(c)
        c.shipment.buy(s.id, rate=s.lowest_rate())
        poll(lambda: [b for st, _, b in got if st == 200], 15, "the event again, taken this time")
        refused, taken = got[0], next(r for r in got if r[0] == 200)
        assert refused[0] == 503 and json.loads(taken[2])["id"] == json.loads(refused[2])["id"]
        pushes = [p for p in sim.server.pushes if p["event"] == json.loads(refused[2])["id"]]
        assert [(p["attempt"], p["response"]) for p in pushes] == [(1, 503), (2, 200)]
        # Not at once: a receiver that is restarting gets time (then twice as much, and so on).
        assert pushes[1]["sent_at"] - pushes[0]["sent_at"] >= resend_delay(1)
        assert [resend_delay(n) for n in range(1, PUSH_ATTEMPTS)] == [0.5, 1, 2, 4, 8, 16, 30]
    finally:
        server.shutdown()
