"""Fixtures: simulated Odoo 17 and 19 servers, and connector clients pointed at them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from siteops.connectors.odoo import OdooClient, OdooConfig
from siteops.sim.odoo import OdooSim, generate
from tests.sim.conftest import NOW, SITES, wait_for

__all__ = ["wait_for"]


def start_sim(version: int = 17, scale: float = 0.1, **creds: Any) -> OdooSim:
    db, truth = generate(SITES, seed=5, scale=scale, version=version, now=NOW, **creds)
    sim = OdooSim(db).start()
    sim.server.truth = truth
    return sim


@pytest.fixture(scope="module")
def sim17() -> Iterator[OdooSim]:
    sim = start_sim(17, scale=0.3)
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def sim19() -> Iterator[OdooSim]:
    sim = start_sim(19, scale=0.3)
    yield sim
    sim.stop()


@pytest.fixture()
def faulty() -> Iterator[OdooSim]:
    """A private Odoo 19 simulator (serves both JSON-RPC and JSON-2) for fault injection."""
    sim = start_sim(19)
    yield sim
    sim.stop()


def make_client(sim: OdooSim, protocol: str = "jsonrpc", site: str = "CW", **overrides: Any) -> OdooClient:
    cfg: dict[str, Any] = dict(url=sim.url, db="demo", login="admin", password="admin", api_key="admin",
                               protocol=protocol, timeout=5.0)
    cfg.update(overrides)
    return OdooClient(OdooConfig(**cfg), site=site)


@pytest.fixture()
def client_factory() -> Callable[..., OdooClient]:
    return make_client
