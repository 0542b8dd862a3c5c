"""Shared equipment of the shipping tests: Odoo and carrier simulators, environment for workers,
and what the carrier's own list says was bought."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from siteops.sim.carrier import CarrierSim
from tests.conftest import environment

WEBHOOK_SECRET = "tracking-webhook-secret"


@contextmanager
def simulators(*, seed: int = 11, scale: float = 1.0, **carrier_env: str) -> Iterator[tuple[Any, CarrierSim]]:
    """The Odoo simulator (the demo network) and the carrier simulator, and the environment
    that workers started inside the block inherit."""
    from siteops.config.sites import get_registry
    from siteops.connectors.carriers.easypost import reset_carriers
    from siteops.connectors.odoo import reset_client
    from siteops.sim.odoo import start
    from tests.conftest import _free_port

    odoo = start(port=_free_port(), seed=seed, scale=scale, sites=get_registry())
    carrier = CarrierSim(step_seconds=1000).start()
    env = dict(SITEOPS_ODOO_URL=odoo.url, SITEOPS_ODOO_DB="demo", SITEOPS_ODOO_LOGIN="admin",
               SITEOPS_ODOO_PASSWORD="admin", SITEOPS_EASYPOST_URL=carrier.api_base,
               SITEOPS_EASYPOST_API_KEY="EZTK_shipping_tests", SITEOPS_EASYPOST_WEBHOOK_SECRET=WEBHOOK_SECRET,
               SITEOPS_CARRIER_TIMEOUT="1.0", SITEOPS_CARRIER_RATE_LIMIT="0",
               SITEOPS_CARRIER_BREAKER_MIN_CALLS="100000")
    env.update(carrier_env)
    try:
        with environment(**env):
            reset_client()
            reset_carriers()
            yield odoo, carrier
    finally:
        carrier.stop()
        odoo.stop()
        reset_client()
        reset_carriers()


def labels_at_carrier(carrier: CarrierSim) -> Counter[str]:
    """Bought labels per reference, read through the carrier's own list API (paged, via the SDK)."""
    from siteops.connectors.carriers.easypost import no_retry_client

    faults = carrier.faults.as_dict()
    carrier.faults.reset()  # counting must not be disturbed by the faults under test
    try:
        client = no_retry_client("EZTK_counting", carrier.api_base, 10)
        page = client.shipment.all(purchased=True, page_size=100)
        shipments = list(page["shipments"])
        while page["has_more"]:
            page = client.shipment.get_next_page(page, page_size=100)
            shipments += page["shipments"]
    finally:
        faults.pop("limited", None)
        carrier.faults.set(**faults)
    return Counter(str(s.reference) for s in shipments)


def tracking_refs(odoo_url: str, picking_ids: list[int]) -> dict[int, str | None]:
    from siteops.connectors.odoo import get_client

    rows = get_client().read("stock.picking", picking_ids, ["carrier_tracking_ref"])
    return {int(r["id"]): r["carrier_tracking_ref"] or None for r in rows}


def ready_pickings(site: str) -> list[tuple[int, str]]:
    from siteops.connectors.odoo import get_client
    from siteops.services.shipping import Shipping

    ids = Shipping(site).ready_pickings()
    names = {int(r["id"]): r["name"] for r in get_client().read("stock.picking", ids, ["name"])}
    return [(i, names[i]) for i in ids]
