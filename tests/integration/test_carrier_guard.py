"""The rate limit and the circuit of a carrier account hold across processes (state in Redis)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from siteops.sim.carrier import CarrierSim
from tests.conftest import REDIS_PORT, ROOT, poll

pytestmark = pytest.mark.integration

CALLS = textwrap.dedent("""
    import json, sys, time
    from siteops.connectors.carriers.config import account
    from siteops.connectors.carriers.easypost import EasyPostCarrier
    from siteops.connectors.carriers.guard import Guard
    from siteops.connectors.errors import ConnectorError
    acct = account(sys.argv[1])
    carrier, guard = EasyPostCarrier(acct), Guard(acct)
    # A barrier: every process starts calling at the same moment (imports take seconds here).
    guard.redis.incr(sys.argv[3])
    while int(guard.redis.get(sys.argv[3])) < int(sys.argv[4]):
        time.sleep(0.01)
    outcomes = []
    for _ in range(int(sys.argv[2])):
        try:
            guard.call("TEST", "shipment.retrieve", lambda: carrier.find_by_reference("nothing"))
            outcomes.append("ok")
        except ConnectorError as exc:
            outcomes.append(type(exc).__name__)
    print(json.dumps(outcomes))
""")


@pytest.fixture
def sim(redis_server: Any) -> Iterator[CarrierSim]:
    with CarrierSim(step_seconds=1000) as s:
        yield s


def env(sim: CarrierSim, **extra: str) -> dict[str, str]:
    return {**os.environ, "SITEOPS_EASYPOST_URL": sim.api_base, "SITEOPS_EASYPOST_API_KEY": "EZTK_guard",
            "SITEOPS_CARRIER_TIMEOUT": "2", **extra}


def run_calls(sim: CarrierSim, account: str, n: int, count: int = 2, **extra: str) -> list[list[str]]:
    """`count` processes at once, each making `n` guarded calls; their outcomes."""
    barrier = f"test:barrier:{uuid.uuid4().hex}"
    argv = [sys.executable, "-c", CALLS, account, str(n), barrier, str(count)]
    procs = [subprocess.Popen(argv, cwd=ROOT, env=env(sim, **extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(count)]
    results = []
    for p in procs:
        out, errors = p.communicate(timeout=60)
        assert p.returncode == 0, errors[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def reset(account: str) -> None:
    redis.Redis(port=REDIS_PORT).delete(f"siteops:carrier:{account}:gcra", f"siteops:carrier:{account}:breaker")


@pytest.mark.slow
def test_two_processes_share_one_rate_limit(sim: CarrierSim) -> None:
    reset("ratetest")
    sim.faults.set(rate_limit_per_second=20)  # the carrier answers 429 above 20 requests/s per key
    outcomes = run_calls(sim, "ratetest", 25, SITEOPS_CARRIER_RATE_LIMIT="20", SITEOPS_CARRIER_MAX_WAIT="10")
    assert [o.count("ok") for o in outcomes] == [25, 25]
    assert sim.faults.limited == 0  # 50 calls from two processes, not one over the account's limit
    # Without the shared limit (each process alone at the same rate), the carrier refuses some:
    reset("ratetest")
    sim.faults.set(rate_limit_per_second=20)
    run_calls(sim, "ratetest", 25, SITEOPS_CARRIER_RATE_LIMIT="0")
    assert sim.faults.limited > 0


def test_the_circuit_opens_for_every_process_and_closes_after_a_probe(sim: CarrierSim) -> None:
    from siteops.connectors.carriers.config import account
    from siteops.connectors.carriers.easypost import EasyPostCarrier
    from siteops.connectors.carriers.guard import CircuitOpen, Guard

    reset("breakertest")
    breaker = {"SITEOPS_CARRIER_BREAKER_MIN_CALLS": "4", "SITEOPS_CARRIER_BREAKER_FAILURE_RATIO": "0.75",
               "SITEOPS_CARRIER_BREAKER_COOLDOWN": "8", "SITEOPS_CARRIER_RATE_LIMIT": "0"}
    sim.faults.set(outage_seconds=3600)  # every request 503
    [first] = run_calls(sim, "breakertest", 8, count=1, **breaker)
    assert first[:4] == ["RetryableError"] * 4 and set(first[4:]) == {"CircuitOpen"}
    reached = len(sim.log.entries())
    [second] = run_calls(sim, "breakertest", 3, count=1, **breaker)  # another process: refused at once
    assert second == ["CircuitOpen"] * 3 and len(sim.log.entries()) == reached
    sim.faults.reset()  # the carrier is back
    os.environ.update(breaker, SITEOPS_EASYPOST_URL=sim.api_base, SITEOPS_EASYPOST_API_KEY="EZTK_guard")
    try:
        acct = account("breakertest")
        guard, carrier = Guard(acct), EasyPostCarrier(acct)

        def probe() -> bool:
            try:
                guard._admit()  # after the cool-down: one caller is let through as the probe...
            except CircuitOpen:
                return False
            return True

        poll(probe, 20, "the circuit to let a probe through")
        with pytest.raises(CircuitOpen, match="half-open"):
            guard._admit()  # ...and only one at a time
        guard._result(ok=True)
        assert guard.state()["state"] == "closed"
        [after] = run_calls(sim, "breakertest", 2, count=1, **breaker)
        assert after == ["ok", "ok"]
        assert carrier.find_by_reference("nothing") is None
    finally:
        for key in [*breaker, "SITEOPS_EASYPOST_URL", "SITEOPS_EASYPOST_API_KEY"]:
            os.environ.pop(key, None)
