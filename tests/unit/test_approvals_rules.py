"""Pure rules of replenishment, approval routing and segregation of duties (no I/O)."""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from pathlib import Path

import pytest

from siteops.config.sites import PolicyError, load_registry, parse_registry
from siteops.rules.approvals import Document, Refused, authorize, parse_feedback, route
from siteops.rules.replenish import (
    NO_SUPPLIER,
    OPEN,
    CentralStock,
    Orderpoint,
    Supplier,
    order_quantity,
    propose_replenishment,
)

ROOT = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 12, 1)


@pytest.fixture(scope="module")
def registry():
    return load_registry(ROOT / "sites.toml")


def routed(registry, kind: str, site: str = "NORTH", amount: float = 0.0, **kw):
    s = registry.get(site)
    return route(registry.approvals, Document(kind, site, amount, **kw), params=s.params, responsible=s.responsible)


# --- replenishment -------------------------------------------------------------------


def op(pid: int = 1, available: float = 3, min_qty: float = 10, max_qty: float = 40, multiple: float = 5):
    return Orderpoint(pid, min_qty, max_qty, multiple, available, unit_cost=2.0, category="All / Saleable / Tools")


def test_quantity_goes_up_to_the_maximum_in_multiples() -> None:
    assert order_quantity(op(available=3)) == 40.0  # need 37 -> 8 x 5
    assert order_quantity(op(available=3, multiple=1)) == 37.0
    assert order_quantity(op(available=10)) == 0.0  # at the minimum: not short
    assert order_quantity(op(available=-4, max_qty=0)) == 15.0  # no max: up to the minimum


def test_central_covers_the_need_only_above_its_own_minimum() -> None:
    kw = dict(central_site="CW", suppliers={1: [Supplier(7, 2), Supplier(9, 1, price=1.5, delay_days=4)]},
              lead_time_days=3, today=TODAY)
    covered, _ = propose_replenishment("NORTH", [op()], central={1: CentralStock(100, 60)}, **kw)
    assert [(p.kind, p.quantity, p.source_site, p.scheduled) for p in covered] == [
        ("transfer", 40.0, "CW", TODAY + dt.timedelta(days=3))]
    assert covered[0].amount == 80.0 and covered[0].key == "replenish:NORTH:1"
    # 100 free less a minimum of 70 leaves 30 < 40: buy from the lowest-sequence supplier.
    bought, _ = propose_replenishment("NORTH", [op()], central={1: CentralStock(100, 70)}, **kw)
    assert [(p.kind, p.partner_id, p.amount, p.scheduled) for p in bought] == [
        ("purchase", 9, 60.0, TODAY + dt.timedelta(days=4))]


def test_an_open_request_is_not_duplicated_and_no_supplier_is_said() -> None:
    kw = dict(central_site="CW", central={}, lead_time_days=2, today=TODAY)
    none, skipped = propose_replenishment("NORTH", [op(1), op(2)], suppliers={2: [Supplier(5)]},
                                          open_products={2: "transfer NORTH/INT/00001 is draft"}, **kw)
    assert none == []
    assert [(s.product_id, s.reason) for s in skipped] == [(1, NO_SUPPLIER), (2, OPEN)]
    assert "no supplier" in str(skipped[0]) and "NORTH/INT/00001" in str(skipped[1])
    # Two orderpoints of one product (two locations of the site): one proposal, one key.
    twice, skipped = propose_replenishment("NORTH", [op(2), op(2, available=0)], suppliers={2: [Supplier(5)]}, **kw)
    assert [p.key for p in twice] == ["replenish:NORTH:2"] and [s.reason for s in skipped] == [OPEN]
    # The central site itself always buys (never a transfer to itself).
    own, _ = propose_replenishment("CW", [op(2)], suppliers={2: [Supplier(5)]}, **{**kw, "central": {
        2: CentralStock(1000)}})
    assert [p.kind for p in own] == ["purchase"]


def test_a_supplier_whose_minimum_is_above_the_quantity_does_not_sell_it() -> None:
    kw = dict(central_site="CW", central={}, lead_time_days=2, today=TODAY)
    # The preferred supplier sells from 50; the order is 40: the next one gets it.
    bought, _ = propose_replenishment("NORTH", [op()], suppliers={1: [Supplier(7, 1, min_qty=50),
                                                                     Supplier(9, 2, min_qty=40)]}, **kw)
    assert [(p.partner_id, p.quantity) for p in bought] == [(9, 40.0)]
    # Nobody sells as little as 40: no proposal, and the skip says why.
    none, skipped = propose_replenishment("NORTH", [op()], suppliers={1: [Supplier(7, 1, min_qty=50),
                                                                         Supplier(9, 2, min_qty=100)]}, **kw)
    assert none == [] and [s.reason for s in skipped] == [NO_SUPPLIER]
    assert "minimum is above it (the least: 50)" in str(skipped[0])


# --- routing -------------------------------------------------------------------------


def test_routing_by_kind_amount_category_vendor_class_and_site(registry) -> None:
    big = routed(registry, "purchase", amount=12000)
    assert big.rule == "purchase-above-limit"
    assert [t.group for t in big.tiers] == ["category_management", "finance"]
    assert big.tiers[1].approvers == ("finance.controller", "finance.analyst") and big.tiers[1].escalate_to == "cfo"
    assert routed(registry, "purchase", amount=50, category="All / Saleable / Electrical").rule == \
        "purchase-strategic-category"
    assert routed(registry, "purchase", amount=50, vendor_class="new").rule == "purchase-new-vendor"
    local = routed(registry, "purchase", amount=50)
    assert local.rule == "purchase-local" and local.tiers[0].approvers == ("north.manager",)
    # A transfer above the value needs the RECEIVING site's manager; below it, no approval.
    transfer = routed(registry, "transfer", site="WEB", amount=2000)
    assert transfer.rule == "transfer-above-value" and transfer.tiers[0].approvers == ("web.manager", "web.lead")
    assert routed(registry, "transfer", amount=100).tiers == ()


def test_adjustments_follow_the_variance_thresholds_of_the_site(registry) -> None:
    assert [t.group for t in routed(registry, "adjustment", amount=3000, quantity=-10).tiers] == \
        ["warehouse_manager", "finance"]
    # CW tunes variance_value_finance to 5000: the same difference stays at review level there.
    assert routed(registry, "adjustment", site="CW", amount=3000, quantity=-10).rule == "adjustment-review"
    assert routed(registry, "adjustment", amount=3000, quantity=2).tiers == ()  # under the quantity threshold


def test_a_site_tunes_a_threshold_only_where_policy_allows(tmp_path) -> None:
    text = (ROOT / "sites.toml").read_text()
    tuned = text.replace('[sites.NORTH]\n', '[sites.NORTH]\ntransfer_review_value = 100.0\n')
    reg = parse_registry(tomllib.loads(tuned), tmp_path / "sites.toml")
    s = reg.get("NORTH")
    assert route(reg.approvals, Document("transfer", "NORTH", 200), params=s.params,
                 responsible=s.responsible).rule == "transfer-above-value"
    locked = text.replace('[sites.NORTH]\n', '[sites.NORTH]\napproval_limit = 1.0\n')
    with pytest.raises(PolicyError, match=r"\[sites.NORTH\] approval_limit: not site-tunable"):
        parse_registry(tomllib.loads(locked), tmp_path / "sites.toml")


@pytest.mark.parametrize("edit, message", [
    (('tiers = ["category_management", "finance"]', 'tiers = ["category_management", "finanse"]'),
     r"rules\[0\] \(purchase-above-limit\) tiers: unknown group 'finanse'"),
    (('min_amount = "approval_limit"', 'min_amount = "approval_limt"'),
     r"rules\[0\] \(purchase-above-limit\) min_amount: 'approval_limt' is not a number in \[policy.defaults\]"),
    (('kind = "purchase"', 'kind = "po"'), r"rules\[0\] \(purchase-above-limit\) kind: expected one of"),
    (('escalate_to = "cfo"', 'escalate_to = ""'), r"groups.finance escalate_to"),
    (('deadline_hours = 48', 'deadline_hours = 0'), r"groups.finance deadline_hours"),
])
def test_a_bad_matrix_names_file_table_and_key(tmp_path, edit, message) -> None:
    text = (ROOT / "sites.toml").read_text()
    assert edit[0] in text
    with pytest.raises(PolicyError, match=re.escape(str(tmp_path / "sites.toml")) + r".*\[policy.approvals\].*"
                       + message):
        parse_registry(tomllib.loads(text.replace(edit[0], edit[1], 1)), tmp_path / "sites.toml")


# --- segregation of duties -----------------------------------------------------------


def test_segregation_of_duties() -> None:
    kw = dict(approvers=["a", "b"], delegations={}, requested_by="r", created_by="c", earlier_deciders=["b"])
    assert authorize("a", **kw) is None
    for person, code in (("b", "earlier_tier"), ("x", "not_an_approver")):
        with pytest.raises(Refused) as refused:
            authorize(person, **kw)
        assert refused.value.code == code
    with pytest.raises(Refused, match="requested this approval"):
        authorize("r", **{**kw, "approvers": ["r"]})
    with pytest.raises(Refused, match="created the Odoo record"):
        authorize("c", **{**kw, "approvers": ["c"]})
    # A delegate decides as the approver; neither may be the requester.
    assert authorize("d", **{**kw, "delegations": {"a": "d"}}) == "a"
    with pytest.raises(Refused, match="r requested"):
        authorize("d", **{**kw, "approvers": ["r"], "delegations": {"r": "d"}})


def test_feedback_words() -> None:
    assert parse_feedback("Approve. looks fine") == "approve"
    assert parse_feedback(" rejected: too much") == "reject"
    assert parse_feedback("done") is None and parse_feedback("") is None
