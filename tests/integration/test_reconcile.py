"""Reconciliation jobs with a real worker against the Odoo, carrier and EDI simulators, with known
drift planted: each dry run reports exactly the drift, the real run fixes it, a second run
finds nothing to change; a worker's pool process SIGKILLed mid-run, and the job completes
when its message comes back without doing anything twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from siteops.sim.carrier import CarrierSim
from tests.conftest import TMP, environment, poll, run_siteops, use_store
from tests.integration import reconcile_drift as drift
from tests.integration.reconcile_drift import SITE, seen
from tests.integration.shipping_harness import ready_pickings, simulators

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def world(stack: Any) -> Iterator[tuple[Any, CarrierSim, Any]]:
    from siteops.config.settings import get_settings

    var = TMP / f"reconcile-var-{uuid.uuid4().hex[:6]}"  # its own EDI mailboxes
    with use_store(f"sqlite:///{TMP / f'reconcile-{uuid.uuid4().hex[:6]}.db'}"), simulators() as (odoo, carrier), \
            environment(SITEOPS_VAR_DIR=str(var)):
        get_settings.cache_clear()
        try:
            from siteops.config.sites import get_registry

            wp = stack.worker(*get_registry().codes, concurrency=1)  # every site: --all-sites runs too
            yield odoo, carrier, wp
            wp.stop()
        finally:
            get_settings.cache_clear()


def reconcile(kind: str, *, apply: bool = False, batch_size: int | None = None,
              job_id: str | None = None) -> dict[str, Any]:
    from siteops.celery_app import app

    app.loader.import_default_modules()
    job_id = job_id or f"{kind}-{uuid.uuid4().hex[:8]}"
    kwargs = {"batch_size": batch_size} if batch_size else {}
    result: dict[str, Any] = app.tasks["siteops.reconcile.run"].apply_async(
        args=[SITE, kind, job_id, None, None, apply], kwargs=kwargs).get(timeout=90)
    return result


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_siteops(*args)


def applicable(report: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(c["model"], c["record"], c["change"]) for c in report["changes"] if c["applies"]}


def test_dry_runs_report_the_planted_drift_and_real_runs_fix_it(world: tuple[Any, CarrierSim, Any]) -> None:
    from siteops.connectors.odoo import get_client
    from siteops.store import exchanges, findings, shipments
    from siteops.store import reconcile as jobs

    _odoo, carrier, _wp = world
    odoo = get_client(SITE)
    ready = ready_pickings(SITE)
    planted = drift.plant_shipments(carrier, ready)
    # po-acks first: its orders put products on order, which the stock baseline then sees.
    expected = {"po-acks": drift.plant_po_acks(odoo), "shipments": planted["expected"],
                "stock": drift.plant_stock(odoo), "findings": drift.plant_findings(odoo)}

    # shipments from the command line: progress on stderr, one JSON report on stdout.
    done = cli("reconcile", "shipments", "--site", SITE.lower(), "--dry-run", "--wait", "--json", "--batch-size", "7")
    assert done.returncode == 0, done.stderr
    dry = json.loads(done.stdout)
    assert (dry["kind"], dry["site"], dry["dry_run"]) == ("shipments", SITE, True)
    assert seen(dry) == expected["shipments"] and dry["job_id"] in done.stderr
    assert all(c["outcome"] in ("would_change", "reported") for c in dry["changes"])
    assert all(shipments.get(SITE, pid) is None for pid in planted["codes"])  # the dry run changed nothing

    for kind in ("stock", "findings", "po-acks"):
        assert seen(reconcile(kind)) == expected[kind], kind

    # The real runs change exactly what their dry runs reported.
    for kind in ("shipments", "stock", "findings", "po-acks"):
        report = reconcile(kind, apply=True)
        assert seen(report) == expected[kind], kind
        assert {c["outcome"] for c in report["changes"] if c["applies"]} <= {"changed"}, report["changes"]
        assert {(c.model, c.record, c.change) for c in jobs.changes(report["job_id"])} == applicable(report)
    refs = {int(r["id"]): r["carrier_tracking_ref"] for r in odoo.read("stock.picking", list(planted["codes"]),
                                                                       ["carrier_tracking_ref"])}
    assert refs == planted["codes"]
    assert all(shipments.get(SITE, pid) for pid in planted["codes"])
    drafts = odoo.search_count("stock.picking", [("origin", "like", "reconcile:stock-"), ("state", "=", "draft")])
    rfqs = odoo.search_count("purchase.order", [("origin", "like", "reconcile:stock-"), ("state", "=", "draft")])
    assert (drafts, rfqs) == (1, 1)
    (resolved,) = [name for _, name, _ in expected["findings"]]
    assert [f.status for f in findings.search(site=SITE, kind="aging_transfers") if f.record_name == resolved] == \
        ["resolved"]
    never = next(name for _, name, change in expected["po-acks"] if change == "po_never_sent")
    assert [x.state for x in exchanges.search(site=SITE, direction="out") if x.business_key == never] == ["sent"]

    # A second run right after finds nothing to change (what it still reports, nobody here can fix).
    for kind in ("shipments", "stock", "findings", "po-acks"):
        again = reconcile(kind)
        assert applicable(again) == set(), (kind, again["changes"])
    assert {c["change"] for c in reconcile("shipments")["changes"]} == {"label_without_picking"}

    # Tracking moved on at the carrier with no webhook: the statuses are brought up to date.
    for code in planted["codes"].values():
        carrier.state.force(code, "delivered")
    carrier.state.advance(5000)
    names = {name for _, name, change in expected["shipments"] if change == "record_label"}
    assert applicable(reconcile("shipments")) == {("siteops.shipment", n, "update_status") for n in names}
    reconcile("shipments", apply=True)
    assert {shipments.get(SITE, pid).status for pid in planted["codes"]} == {"delivered"}  # type: ignore[union-attr]
    assert applicable(reconcile("shipments")) == set()

    # Every site at once: one job (one task) per site, each its own report.
    done = cli("reconcile", "findings", "--all-sites", "--wait", "--json")
    assert done.returncode == 0, done.stderr
    every = json.loads(done.stdout)
    from siteops.config.sites import get_registry

    assert sorted(r["site"] for r in every["reports"]) == sorted(get_registry().codes) and not every["failed"]
    assert all(applicable(r) == set() for r in every["reports"])

    listed = cli("jobs", "--site", SITE, "--kind", "shipments", "--json")
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)
    assert dry["job_id"] in {r["job_id"] for r in runs} and {r["status"] for r in runs} == {"succeeded"}
    shown = cli("jobs", "show", dry["job_id"])
    assert shown.returncode == 0 and "label_without_picking" in shown.stdout and "write_tracking_ref" in shown.stdout


def test_a_pool_process_killed_mid_run_and_the_job_completes_doing_nothing_twice(
        world: tuple[Any, CarrierSim, Any]) -> None:
    from siteops.celery_app import app
    from siteops.connectors.odoo import get_client
    from siteops.store import reconcile as jobs

    odoo_sim, carrier, wp = world
    odoo = get_client(SITE)
    picked = ready_pickings(SITE)[:6]
    codes = {pid: drift.buy_label(carrier, name) for pid, name in picked}
    job_id = f"kill-{uuid.uuid4().hex[:8]}"
    odoo_sim.log.clear()
    odoo_sim.faults.set(latency=0.25, methods=["write"])  # slow writes: the kill lands mid-run
    try:
        app.loader.import_default_modules()
        app.tasks["siteops.reconcile.run"].apply_async(args=[SITE, "shipments", job_id, None, None, True],
                                                       kwargs={"batch_size": 1})
        poll(lambda: len(jobs.changes(job_id)) >= 3, 60, "the job to be part way through")
        (child,) = wp.children()
        os.kill(child, signal.SIGKILL)
        poll(lambda: (j := jobs.get(job_id)) is not None and j.status == "succeeded", 90,
             "the job to complete after the kill")
    finally:
        odoo_sim.faults.reset()
    job = jobs.get(job_id)
    assert job is not None and job.runs == 2 and job.done == job.total
    assert {r["id"]: r["carrier_tracking_ref"] for r in odoo.read("stock.picking", list(codes),
                                                                  ["carrier_tracking_ref"])} == codes
    writes = [e for e in odoo_sim.log.entries() if e.get("model") == "stock.picking"
              and e.get("model_method") == "write"]
    assert len(writes) == len(codes)  # one write per picking, whatever the kill interrupted
    changes = [(c["record"], c["change"], c["outcome"]) for c in job.report["changes"]]
    assert sorted(changes) == sorted([(name, change, "changed") for _, name in picked
                                      for change in ("write_tracking_ref", "record_label")]
                                     + [(ref, "label_without_picking", "reported") for ref in carrier.state.by_reference
                                        if ref == f"{SITE}/OUT/99999"])
    assert len(jobs.changes(job_id)) == 2 * len(codes)
    # Run again with the same job id: the finished job returns its report, nothing happens.
    assert reconcile("shipments", apply=True, job_id=job_id) == job.report
    assert len([e for e in odoo_sim.log.entries() if e.get("model_method") == "write"]) == len(codes)


def test_cli_refuses_bad_input_with_a_clear_message(store_ready: None) -> None:
    from typer.testing import CliRunner

    from siteops.cli import app

    runner = CliRunner()
    for args, message in ((["reconcile", "parcels", "--site", SITE], "unknown reconcile kind 'parcels'"),
                          (["reconcile", "stock", "--site", SITE, "--dry-run", "--apply"], "exclude each other"),
                          (["reconcile", "stock"], "give --site CODE or --all-sites"),
                          (["reconcile", "stock", "--site", "MARS"], "unknown site 'MARS'"),
                          (["reconcile", "stock", "--site", SITE, "--since", "yesterday"], "--since: 'yesterday'"),
                          (["jobs", "show", "nope"], "no reconciliation job 'nope'")):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
