"""The EasyPost adapter: classified errors only, no retries of its own (every attempt visible),
the carrier's dedupe on a second buy, and the tracking webhook's signature."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import easypost
import pytest

from siteops.connectors.carriers.config import account
from siteops.connectors.carriers.easypost import EasyPostCarrier, parse_webhook
from siteops.connectors.carriers.model import Address, Parcel, ShipmentRequest, TrackStatus
from siteops.connectors.errors import AuthError, PermanentError, RateLimited, RetryableError
from siteops.sim.carrier import CarrierSim, sign

HOME = Address("Dock 1", "100 Depot Road", "Springfield", "62701", "US")


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[CarrierSim]:
    with CarrierSim(step_seconds=1000) as s:
        monkeypatch.setenv("SITEOPS_EASYPOST_URL", s.api_base)
        monkeypatch.setenv("SITEOPS_EASYPOST_API_KEY", "EZTK_adapter")
        monkeypatch.setenv("SITEOPS_CARRIER_TIMEOUT", "0.5")
        yield s


def carrier() -> EasyPostCarrier:
    return EasyPostCarrier(account("simship"))


def request(ref: str = "NORTH/OUT/00007") -> ShipmentRequest:
    return ShipmentRequest(reference=ref, ship_from=HOME, ship_to=HOME, parcel=Parcel(weight_kg=1.5))


def test_the_sdk_retries_by_itself_and_the_adapter_does_not(sim: CarrierSim) -> None:
    sim.faults.set(rate_limit_rate=1.0, retry_after=1)
    raw = easypost.EasyPostClient("EZTK_raw", api_base=sim.api_base)
    with pytest.raises(easypost.errors.RateLimitError):
        raw.shipment.retrieve("shp_x")
    sdk_attempts = sim.log.count(path="/v2/shipments/shp_x")
    assert sdk_attempts > 1  # urllib3's Retry honoured Retry-After behind the caller's back
    sim.log.clear()
    with pytest.raises(RateLimited) as limited:
        carrier().retrieve("shp_x")
    assert limited.value.retry_after == 1.0
    assert sim.log.count(path="/v2/shipments/shp_x") == 1
    sim.faults.reset()
    sim.faults.set(outage_seconds=30, outage_mode="drop")
    with pytest.raises(RetryableError):
        carrier().retrieve("shp_x")
    assert sim.log.count(path="/v2/shipments/shp_x") == 2  # one more: no hidden connection retries


def test_errors_are_classified(sim: CarrierSim, monkeypatch: pytest.MonkeyPatch) -> None:
    c = carrier()
    sim.faults.set(error_rate=1.0, error_statuses=[502])
    with pytest.raises(RetryableError, match="HTTP 502"):
        c.create_shipment(request())
    sim.faults.reset()
    sim.faults.set(timeout_rate=1.0, timeout_seconds=1.5)
    with pytest.raises(RetryableError, match="timed out"):
        c.retrieve("shp_x")
    sim.faults.reset()
    with pytest.raises(PermanentError, match="street1"):
        c.create_shipment(ShipmentRequest("R", HOME, Address("x", "", "c", "1", "US"), Parcel(1)))
    assert c.find_by_reference("never-created") is None
    monkeypatch.setenv("SITEOPS_EASYPOST_API_KEY", "sk_wrong")
    with pytest.raises(AuthError):
        carrier().retrieve("shp_x")


def test_a_second_buy_returns_the_label_already_bought(sim: CarrierSim) -> None:
    c = carrier()
    shipment = c.create_shipment(request())
    first = c.buy(shipment)
    again = c.buy(shipment)  # e.g. a retry after a timeout whose buy had completed
    assert first.bought and again.tracking_code == first.tracking_code
    assert sim.state.counts()["labels"] == 1
    found = c.find_by_reference("NORTH/OUT/00007")
    assert found is not None and found.tracking_code == first.tracking_code
    sim.state.advance(5000)
    sim.state.force(first.tracking_code, "exception")
    assert first.tracker_id and c.track(first.tracker_id).status == TrackStatus.EXCEPTION


def event(code: str = "9400000000000000000009", status: str = "failure") -> bytes:
    return json.dumps({"object": "Event", "id": "evt_1", "description": "tracker.updated", "mode": "test",
                       "result": {"object": "Tracker", "id": "trk_1", "tracking_code": code, "status": status,
                                  "status_detail": "address_not_found",
                                  "tracking_details": [{"object": "TrackingDetail", "status": status,
                                                        "message": "address not found",
                                                        "datetime": "2026-12-01T10:00:00Z"}]}}).encode()


def test_webhook_signature_is_checked_and_the_event_read() -> None:
    body = event()
    update = parse_webhook({"x-hmac-signature": sign("whsec", body)}, body, "whsec")
    assert update is not None and update.status == TrackStatus.EXCEPTION and update.event_id == "evt_1"
    assert update.carrier_status == "failure" and update.occurred_at == "2026-12-01T10:00:00Z"
    for headers, payload in [({}, body), ({"X-Hmac-Signature": sign("other", body)}, body),
                             ({"X-Hmac-Signature": sign("whsec", body)}, body.replace(b"failure", b"delivered"))]:
        with pytest.raises(AuthError):
            parse_webhook(headers, payload, "whsec")
    other: Any = json.dumps({"object": "Event", "description": "batch.created", "result": {}}).encode()
    assert parse_webhook({"X-Hmac-Signature": sign("whsec", other)}, other, "whsec") is None
