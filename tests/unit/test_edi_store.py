"""The exchanges store on SQLite and PostgreSQL: control numbers never handed out twice (also
under concurrent allocation), the same file recorded once, and the deadline sweep's query."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.postgres


def test_control_numbers_are_per_partner_and_never_reused(store_url):
    from siteops.store import exchanges

    with ThreadPoolExecutor(4) as pool:
        numbers = list(pool.map(lambda _: exchanges.allocate("ACME", "interchange"), range(24)))
    assert sorted(numbers) == list(range(1, 25))
    assert exchanges.allocate("EUROPA", "interchange") == 1
    assert exchanges.allocate("ACME", "group") == 1
    assert exchanges.allocate("ACME", "interchange") == 25


def test_the_same_file_is_recorded_once_and_deadlines_are_found(store_url):
    from siteops.store import exchanges
    from siteops.store.models import utcnow

    values = dict(direction="in", partner="ACME", site="NORTH", standard="x12", doc_type="855",
                  filename="a.edi", checksum="abc")
    first = exchanges.add(**values)
    assert first is not None and exchanges.add(**{**values, "filename": "b.edi"}) is None
    assert exchanges.by_checksum("in", "ACME", "abc").id == first.id
    late = exchanges.add(direction="out", partner="ACME", site="NORTH", standard="x12", doc_type="850",
                         filename="850.edi", checksum="x", state="sent", odoo_model="purchase.order", odoo_id=7,
                         ack_due_at=utcnow() - dt.timedelta(seconds=1))
    exchanges.add(direction="out", partner="ACME", site="NORTH", standard="x12", doc_type="850",
                  filename="851.edi", checksum="y", state="sent", ack_due_at=utcnow() + dt.timedelta(hours=1))
    assert [x.id for x in exchanges.overdue()] == [late.id]
    assert exchanges.set_state(late.id, "acknowledged", expect="sent")
    assert not exchanges.set_state(late.id, "acknowledged", expect="sent")  # guarded by the state it expects
    assert [x.id for x in exchanges.search(partner="ACME", state="acknowledged")] == [late.id]
