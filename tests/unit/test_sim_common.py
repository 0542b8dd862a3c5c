"""The plumbing both simulators share (siteops.sim.common), through each simulator's own
`/__sim__/faults` and request log, so a regression in either shows here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from siteops.sim.carrier import CarrierSim
from siteops.sim.odoo import OdooSim
from siteops.sim.odoo.store import Database

KEY = {"Authorization": "Bearer EZTK_common"}


@pytest.fixture(params=["odoo", "carrier"])
def sim(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Each simulator, empty (the fault switch and the log do not need data)."""
    started: Any = OdooSim(Database("demo", 17)) if request.param == "odoo" else CarrierSim(step_seconds=1000)
    with started:
        yield started


# One client: building one per request (its TLS context) costs more than the request.
HTTP = httpx.Client(timeout=5)


def probe(sim: Any) -> httpx.Response:
    """One request the simulator's faults apply to."""
    if isinstance(sim, OdooSim):
        return HTTP.post(f"{sim.url}/jsonrpc",
                         json={"jsonrpc": "2.0", "id": 1, "params": {"service": "db", "method": "list"}})
    return HTTP.get(f"{sim.api_base}/shipments", headers=KEY)


def test_fault_settings_are_checked_set_and_reset_over_http(sim: Any) -> None:
    faults = f"{sim.url}/__sim__/faults"
    defaults = HTTP.get(faults).json()
    refused = HTTP.post(faults, json={"latency": 0.5, "no_such_fault": 1})
    assert refused.status_code == 400 and "no_such_fault" in refused.json()["error"]
    assert HTTP.post(faults, content=b"{not json").status_code == 400
    assert HTTP.post(faults, json=[1, 2]).status_code == 400  # not an object
    # A refused change changes nothing, not even its valid part.
    assert HTTP.get(faults).json() == defaults
    assert probe(sim).status_code == 200
    opened = HTTP.post(faults, json={"outage_seconds": 60}).json()
    assert opened["outage_end"] - opened["outage_start"] == pytest.approx(60)
    assert probe(sim).status_code == 503
    assert HTTP.delete(faults).json() == defaults
    assert probe(sim).status_code == 200


def test_an_outage_can_start_later_and_drop_connections(sim: Any) -> None:
    sim.faults.set(outage_seconds=60, outage_in=3600)
    assert probe(sim).status_code == 200  # not yet
    sim.faults.set(outage_seconds=60, outage_mode="drop")
    with pytest.raises(httpx.TransportError):
        probe(sim)
    sim.faults.reset()
    assert probe(sim).status_code == 200


def test_the_request_log_counts_and_clears(sim: Any) -> None:
    for _ in range(3):
        probe(sim)
    path = "/jsonrpc" if isinstance(sim, OdooSim) else "/v2/shipments"
    assert sim.log.count(path=path) == 3 and len(sim.log) == 3
    HTTP.delete(f"{sim.url}/__sim__/requests")
    assert sim.log.count(path=path) == 0 and sim.log.entries() == []


def test_a_seed_replays_the_same_random_faults(sim: Any) -> None:
    def run() -> list[int]:
        settings: dict[str, Any] = {"seed": 42, "error_rate": 0.5}
        if isinstance(sim, CarrierSim):
            settings["error_statuses"] = [502]
        sim.faults.set(**settings)
        return [probe(sim).status_code for _ in range(16)]

    first = run()
    assert set(first) == {200, 502 if isinstance(sim, CarrierSim) else 503}  # both outcomes drawn
    assert run() == first


def test_carrier_rate_limit_counter_shows_in_the_settings_and_resets() -> None:
    """The carrier's own state beside the shared settings: token buckets and `limited`."""
    with CarrierSim(step_seconds=1000) as sim:
        sim.faults.set(rate_limit_per_second=1)
        statuses = [probe(sim).status_code for _ in range(3)]
        assert statuses[0] == 200 and 429 in statuses
        limited = HTTP.get(f"{sim.url}/__sim__/faults").json()["limited"]
        assert limited == statuses.count(429)
        assert HTTP.delete(f"{sim.url}/__sim__/faults").json()["limited"] == 0
        assert probe(sim).status_code == 200


def test_stop_frees_the_port_promptly() -> None:
    import time

    for sim in (OdooSim(Database("demo", 17)), CarrierSim(step_seconds=1000)):
        sim.start()
        port = sim.port
        started = time.monotonic()
        sim.stop()
        assert time.monotonic() - started < 1.0
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/__sim__/health", timeout=2)
