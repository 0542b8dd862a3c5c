"""Fixtures: a simulated Odoo on a free port, seeded with a small multi-site data set."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import odoorpc
import pytest

from siteops.sim.odoo import OdooSim, SiteSpec, generate

NOW = datetime(2026, 3, 2, 9, 30, 0)

# A stand-in for siteops.config.sites.Site: the generator only needs these attributes.
SITES = [
    SiteSpec("CW", "Central Warehouse", "CW", ("cw.manager", "cw.supervisor"),
             {"transfer_aging_hours": 24, "variance_value_finance": 5000.0}),
    SiteSpec("NORTH", "North Branch", "NORTH", ("north.manager",), {}),
    SiteSpec("WEB", "eCommerce Fulfilment", "WEB", ("web.manager",),
             {"transfer_aging_hours": 12, "backorder_aging_days": 3}),
]


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Poll with a deadline (never sleep as synchronisation)."""
    from tests.conftest import poll

    return poll(predicate, timeout, what, interval=0.01)


def make_sim(version: int = 17, scale: float = 0.3, seed: int = 7) -> tuple[OdooSim, dict[str, Any]]:
    db, truth = generate(SITES, seed=seed, scale=scale, version=version, now=NOW)
    sim = OdooSim(db).start()
    sim.server.truth = truth
    return sim, truth


@pytest.fixture(scope="session")
def sim_and_truth() -> Iterator[tuple[OdooSim, dict[str, Any]]]:
    sim, truth = make_sim()
    yield sim, truth
    sim.stop()


@pytest.fixture(scope="session")
def sim(sim_and_truth: tuple[OdooSim, dict[str, Any]]) -> OdooSim:
    return sim_and_truth[0]


@pytest.fixture(scope="session")
def truth(sim_and_truth: tuple[OdooSim, dict[str, Any]]) -> dict[str, Any]:
    return sim_and_truth[1]


@pytest.fixture()
def fresh_sim() -> Iterator[OdooSim]:
    """A private simulator for tests that change data or inject faults."""
    sim, _ = make_sim(scale=0.1)
    yield sim
    sim.stop()


@pytest.fixture()
def fresh_odoo(fresh_sim: OdooSim) -> odoorpc.ODOO:
    """odoorpc logged in to a private simulator (for tests that change data)."""
    client = odoorpc.ODOO(fresh_sim.host, port=fresh_sim.port, timeout=10)
    client.login("demo", "admin", "admin")
    return client


@pytest.fixture()
def odoo(sim: OdooSim) -> odoorpc.ODOO:
    client = odoorpc.ODOO(sim.host, port=sim.port, timeout=10)
    client.login("demo", "admin", "admin")
    return client


@pytest.fixture(autouse=True)
def _clean_faults(sim_and_truth: tuple[OdooSim, dict[str, Any]]) -> Iterator[None]:
    yield
    sim_and_truth[0].faults.reset()
