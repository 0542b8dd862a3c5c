"""The connector under injected faults: every failure is classified, none leaks raw, timeouts hold."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest

from siteops.connectors.errors import (
    AuthError,
    ConnectorError,
    MissingRecord,
    PermanentError,
    RateLimited,
    RetryableError,
)
from siteops.sim.odoo import OdooSim
from tests.connectors.conftest import make_client, wait_for

PROTOCOLS = ["jsonrpc", "json2"]


def _count(client: Any) -> int:
    return int(client.search_count("stock.picking", []))


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("faults,expected", [
    ({"error_rate": 1.0, "error_status": 503}, RetryableError),
    ({"error_rate": 1.0, "error_status": 502}, RetryableError),
    ({"error_rate": 1.0, "error_status": 504}, RetryableError),
    ({"error_rate": 1.0, "error_status": 503, "error_retry_after": 7}, RateLimited),
    # a 500 with no Odoo envelope (a proxy's page, a crashed worker): retried, bounded by the policy
    ({"error_rate": 1.0, "error_status": 500}, RetryableError),
    # Odoo's own envelope decides, whatever the status: an unknown exception is permanent...
    ({"error_rate": 1.0, "error_status": 500, "error_name": "odoo.addons.x.Broken"}, PermanentError),
    ({"error_rate": 1.0, "error_status": 500, "error_name": "builtins.KeyError"}, PermanentError),
    # ...a database conflict Odoo gave up on is not
    ({"error_rate": 1.0, "error_status": 500, "error_name": "psycopg2.errors.SerializationFailure"},
     RetryableError),
    # status 0: as Odoo sends it (JSON-RPC: HTTP 200 + envelope; JSON-2: the exception's http_status)
    ({"error_rate": 1.0, "error_status": 0, "error_name": "odoo.exceptions.ValidationError"}, PermanentError),
    ({"error_rate": 1.0, "error_status": 0, "error_name": "odoo.exceptions.UserError"}, PermanentError),
    ({"error_rate": 1.0, "error_status": 0, "error_name": "odoo.exceptions.AccessError"}, PermanentError),
    ({"error_rate": 1.0, "error_status": 0, "error_name": "odoo.exceptions.MissingError"}, MissingRecord),
    ({"error_rate": 1.0, "error_status": 0, "error_name": "odoo.exceptions.AccessDenied",
      "methods": ["search_count"]}, AuthError),
    ({"error_rate": 1.0, "error_status": 404}, PermanentError),
    ({"error_rate": 1.0, "error_status": 400}, PermanentError),
    ({"drop_rate": 1.0}, RetryableError),
    ({"latency": 2.0, "methods": ["search_count"]}, RetryableError),
    ({"rate_limit_rate": 1.0, "retry_after": 7}, RateLimited),
    ({"auth_revoked": True}, AuthError),
])
def test_faults_are_classified(faulty: OdooSim, protocol: str, faults: dict[str, Any],
                               expected: type[ConnectorError]) -> None:
    client = make_client(faulty, protocol, timeout=0.5)
    assert _count(client) > 0  # connected and logged in before the fault
    faulty.faults.set(**faults)
    with pytest.raises(ConnectorError) as exc:
        _count(client)
    assert type(exc.value) is expected, repr(exc.value)
    assert exc.value.system == "odoo" and exc.value.operation == "stock.picking.search_count"
    if expected is RateLimited:
        assert exc.value.retry_after == 7  # type: ignore[attr-defined]
    if faults.get("error_name"):
        assert faults["error_name"] in str(exc.value)  # Odoo's exception is named in the error
    faulty.faults.reset()
    assert _count(client) > 0  # recovers by itself (auth: one re-login)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_remote_errors_are_permanent(faulty: OdooSim, protocol: str) -> None:
    client = make_client(faulty, protocol)
    cases = [
        lambda: client.search_read("no.such.model", [], ["name"]),
        lambda: client.search_read("stock.picking", [("bogus", "=", 1)], ["name"]),
        lambda: client.call("stock.picking", "frobnicate", [1]),
        lambda: client.call("stock.picking", "search", unexpected=True),
    ]
    for case in cases:
        with pytest.raises(PermanentError) as exc:
            case()
        assert not isinstance(exc.value, AuthError | MissingRecord)
        assert exc.value.__cause__ is not None or protocol == "json2"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_deleted_record_is_missing_not_failed(faulty: OdooSim, protocol: str) -> None:
    """Odoo's MissingError (JSON-2: 404) is `MissingRecord`, a PermanentError callers can tell apart."""
    client = make_client(faulty, protocol)
    pid = client.create("res.partner", {"name": "Soon gone"})
    client.call("res.partner", "unlink", [pid])
    for case in (lambda: client.write("res.partner", [pid], {"name": "x"}),
                 lambda: client.post_note("res.partner", pid, "hello")):
        with pytest.raises(MissingRecord) as exc:
            case()
        assert isinstance(exc.value, PermanentError) and "MissingError" in str(exc.value)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_timeout_is_enforced_and_retryable(faulty: OdooSim, protocol: str) -> None:
    client = make_client(faulty, protocol, timeout=0.3)
    assert _count(client) > 0
    faulty.faults.set(latency=3.0, methods=["search_count"])
    start = time.monotonic()
    with pytest.raises(RetryableError, match="timed out"):
        _count(client)
    assert time.monotonic() - start < 2.0


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_slow_pages_time_out_and_smaller_pages_pass(faulty: OdooSim, protocol: str) -> None:
    client = make_client(faulty, protocol, timeout=0.4)
    faulty.faults.set(slow_page_min=50, slow_page_seconds=2.0)
    with pytest.raises(RetryableError):
        list(client.iter_search_read("stock.picking", [], ["name"], page_size=100))
    rows = list(client.iter_search_read("stock.picking", [], ["name"], page_size=40))
    assert len(rows) == client.search_count("stock.picking", [])


def test_outage_window_then_recovery(faulty: OdooSim) -> None:
    client = make_client(faulty, "jsonrpc")
    assert _count(client) > 0
    faulty.faults.set(outage_seconds=0.5)
    with pytest.raises(RetryableError):
        _count(client)

    def recovered() -> bool:
        try:
            return _count(client) > 0
        except RetryableError:
            return False
    wait_for(recovered, timeout=5, what="the end of the outage")


def test_connection_refused_is_retryable(faulty: OdooSim) -> None:
    client = make_client(faulty, "jsonrpc")
    assert _count(client) > 0
    faulty.stop()
    with pytest.raises(RetryableError, match="network error"):
        _count(client)
    fresh = make_client(faulty, "auto")
    with pytest.raises(RetryableError):
        _count(fresh)  # the version probe itself fails, classified


def test_wrong_credentials_are_auth_errors(faulty: OdooSim) -> None:
    with pytest.raises(AuthError, match="login refused"):
        _count(make_client(faulty, "jsonrpc", password="nope", api_key=""))
    with pytest.raises(AuthError):
        _count(make_client(faulty, "json2", api_key="nope"))
    with pytest.raises(AuthError):
        _count(make_client(faulty, "json2", api_key=""))


def test_faults_over_http_control_endpoint(faulty: OdooSim) -> None:
    """A test driving a subprocess simulator sets faults and reads the request log over HTTP."""
    req = urllib.request.Request(f"{faulty.url}/__sim__/faults", data=json.dumps({"error_rate": 1.0}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert json.loads(resp.read())["error_rate"] == 1.0
    client = make_client(faulty, "json2")
    with pytest.raises(RetryableError):
        _count(client)
    urllib.request.urlopen(urllib.request.Request(f"{faulty.url}/__sim__/faults", method="DELETE"), timeout=5)
    assert _count(client) > 0
    with urllib.request.urlopen(f"{faulty.url}/__sim__/requests", timeout=5) as resp:
        log = json.loads(resp.read())
    assert any(e.get("status") == "fault" for e in log)
    assert log[-1]["model_method"] == "search_count" and log[-1]["status"] == 200


def test_random_faults_never_leak_raw_exceptions(faulty: OdooSim) -> None:
    clients = [make_client(faulty, p, timeout=0.5) for p in PROTOCOLS]
    for c in clients:
        _count(c)
    faulty.faults.set(seed=3, error_rate=0.2, drop_rate=0.15, rate_limit_rate=0.1, latency=0.0)
    outcomes: dict[str, int] = {}
    for i in range(60):
        client = clients[i % 2]
        try:
            client.search_read("stock.picking", [("id", ">", i)], ["name", "partner_id"], limit=5)
            outcomes["ok"] = outcomes.get("ok", 0) + 1
        except ConnectorError as exc:  # anything else fails the test
            outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
    assert outcomes.get("ok") and outcomes.get("RetryableError") and outcomes.get("RateLimited")
