"""`siteops run` (what `make run` starts): the whole stack up, a ping answered, Ctrl-C stops all."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, _free_port, poll
from tests.e2e.screenshots import shoot_the_stack

# A whole stack starting beside the rest of the suite on two cores can take minutes; the
# runner fails by itself sooner when a part is broken (its own waits: 90 s workers, 60 s each service).
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(720)]
SCAN_KINDS = {"aging_transfers", "overdue_receipts", "aging_backorders", "stock_anomalies"}


def scan_deliveries(port: int) -> dict:
    deliveries = httpx.get(f"http://127.0.0.1:{port}/", timeout=5).json()["deliveries"]
    return {k: v for k, v in deliveries.items() if v["finding"]["kind"] in SCAN_KINDS}


def processes_with(marker: str) -> list[int]:
    """Pids whose environment carries `marker` (every process the stack started does)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes() or marker.encode() in (
                    proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def approvals_to_decide(odoo: Any, cli_json: Callable[..., Any]) -> tuple[dict, dict, list[dict]] | None:
    """A pending transfer request and a pending purchase request whose order goes to an EDI
    partner's vendor (sites.toml), both with their Odoo record made, and every pending
    request; None until there are."""
    from siteops.config.edi import load_edi

    listed = cli_json("approvals", "--status", "pending")
    pending = [r for r in listed if r["record"]["id"]]
    transfer = next((r for r in pending if r["kind"] == "transfer"), None)
    purchases = {int(r["record"]["id"]): r for r in pending if r["kind"] == "purchase"}
    if transfer is None or not purchases:
        return None
    refs = {p.odoo_vendor_ref for p in load_edi(ROOT / "sites.toml")}
    orders = odoo.env["purchase.order"].read(sorted(purchases), ["partner_id"])
    vendors = {int(v["id"]): v["ref"] for v in odoo.env["res.partner"].read(
        sorted({int(o["partner_id"][0]) for o in orders}), ["ref"])}
    edi = [purchases[int(o["id"])] for o in orders if vendors[int(o["partner_id"][0])] in refs]
    return (transfer, edi[0], listed) if edi else None


def approval_activity(odoo: Any, request_id: int) -> list[dict]:
    """The open Odoo activity of the request's pending tier (what its approver sees)."""
    return odoo.env["mail.activity"].search_read([("summary", "=like", f"Approval #{request_id}: %")],
                                                 ["summary", "user_id"])


def decide_every_tier(request_id: int, cli_json: Callable[..., Any],
                      siteops: Callable[..., subprocess.CompletedProcess[str]]) -> dict:
    """Approve each tier from the CLI as a member of its group who may decide it: not the
    requester, not the record's creator, not an earlier tier's decider (the request's own
    approvers, from `siteops approvals show`). Returns the request as shown before."""
    request = cli_json("approvals", "show", str(request_id))
    earlier: list[str] = []
    for n, tier in enumerate(request["tiers"], 1):
        blocked = {request["requested_by"], request["created_by"], *earlier}
        login = next(a for a in tier["approvers"] if a not in blocked)
        out = siteops("approvals", "decide", str(request_id), "--approve", "--as", login)
        assert out.returncode == 0, out.stdout + out.stderr
        outcome = "approved" if n == len(request["tiers"]) else "tier_approved"
        assert f"request {request_id}: {outcome} (tier {tier['group']} by {login})" in out.stdout, out.stdout
        earlier.append(login)
    return request


def applied(request_id: int, cli_json: Callable[..., Any]) -> str | None:
    """What siteops did in Odoo for an approved request, once done (None before)."""
    request = cli_json("approvals", "show", str(request_id))
    if not request or not request["applied"]:
        return None
    assert request["status"] == "approved", request
    assert all(t["status"] == "approved" and t["decided_by"] in t["approvers"] for t in request["tiers"])
    return str(request["applied"])


def test_run_starts_every_part_answers_a_ping_and_stops_everything(tmp_path: Path) -> None:
    var = tmp_path / "var"
    flower_port, exporter_port, odoo_port, webhook_port = _free_port(), _free_port(), _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SITEOPS_", "PROMETHEUS_", "FLOWER_"))}
    env.update(SITEOPS_VAR_DIR=str(var), SITEOPS_BROKER_URL=f"redis://127.0.0.1:{_free_port()}/0")
    argv = [sys.executable, "-m", "siteops.cli", "run", "--flower-port", str(flower_port), "--exporter-port",
            str(exporter_port), "--odoo-port", str(odoo_port), "--webhook-port", str(webhook_port),
            "--carrier-port", str(_free_port()), "--ingress-port", str(_free_port())]

    def start(log: Path) -> subprocess.Popen[bytes]:
        with open(log, "wb") as out:
            return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)

    def stop(run: subprocess.Popen[bytes], log: Path) -> None:
        run.send_signal(signal.SIGINT)
        run.wait(60)
        assert "stopped: every process this run started has exited." in log.read_text()
        assert run.returncode == 0
        assert processes_with(str(var)) == []

    def findings() -> list[dict]:
        out = subprocess.run([sys.executable, "-m", "siteops.cli", "findings", "--json"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
        # The scans' findings (EDI raises po_exceptions of its own, checked below).
        return [f for f in json.loads(out.stdout) if f["kind"] in SCAN_KINDS] if out.returncode == 0 else []

    def shipments() -> list[dict]:
        out = subprocess.run([sys.executable, "-m", "siteops.cli", "shipments", "--json"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
        return json.loads(out.stdout) if out.returncode == 0 else []

    def cli_json(*args: str) -> Any:
        out = subprocess.run([sys.executable, "-m", "siteops.cli", *args, "--json"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
        return json.loads(out.stdout) if out.returncode == 0 else []

    def siteops(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "siteops.cli", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)

    # The polls below read the store directly: a CLI call costs a Python start (about a CPU
    # second), and the CLI is asked once the condition holds, for what a user would see.
    def sql(query: str, *params: Any) -> int:
        with sqlite3.connect(var / "siteops.db") as db:
            return int(db.execute(query, params).fetchone()[0] or 0)

    def complete_scans() -> int:
        return sql("select count(*) from scan_runs where status = 'complete'")

    log = tmp_path / "run.out"
    run = start(log)
    try:
        poll(lambda: "siteops is running" in log.read_text() or run.poll() is not None, 300, "the stack to start")
        assert run.poll() is None, log.read_text()
        text = log.read_text()
        for part in ("worker CW", "worker NORTH", "worker SOUTH", "worker EAST", "worker WEB", "worker platform",
                     "beat", "flower", "exporter", f"http://127.0.0.1:{flower_port}/",
                     f"http://127.0.0.1:{exporter_port}/metrics", "odoo simulator", "webhook receiver"):
            assert part in text

        ping = subprocess.run([sys.executable, "-m", "siteops.cli", "enqueue", "siteops.ops.ping", "--site",
                               "NORTH", "--wait", "--timeout", "90"],  # behind NORTH's first scans (one process)
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=150)
        assert ping.returncode == 0, ping.stderr
        assert json.loads(ping.stdout.partition("\n")[2])["worker"].startswith("NORTH@")

        # Flower, behind basic auth, lists a worker for every site and the platform queue.
        user, password = (var / "flower-auth").read_text().strip().split(":", 1)
        url = f"http://127.0.0.1:{flower_port}/api/workers?refresh=1"
        assert httpx.get(url, timeout=10).status_code == 401

        def queues() -> set[str]:
            workers = httpx.get(url, auth=(user, password), timeout=10).json()
            return {q["name"] for w in workers.values() for q in w.get("active_queues", [])}

        poll(lambda: queues() >= {"site.CW", "site.NORTH", "site.SOUTH", "site.EAST", "site.WEB", "platform"},
             30, "Flower to list every site's worker", interval=0.5)

        # The exporter sees a live worker for every site, and beat ticking.
        metrics = httpx.get(f"http://127.0.0.1:{exporter_port}/metrics", timeout=10).text
        for site in ("CW", "NORTH", "SOUTH", "EAST", "WEB", "platform"):
            assert f'siteops_workers_alive{{site="{site}"}} 1.0' in metrics
        assert "siteops_beat_last_tick_timestamp_seconds" in metrics

        # Odoo's automation rules are wired per site: record changes arrive by webhook and
        # the ingress takes them (the catch-up scan is only the safety net).
        assert "20 Odoo automation rules registered" in log.read_text()

        def webhooks_accepted() -> float:
            text = httpx.get(f"http://127.0.0.1:{exporter_port}/metrics", timeout=10).text
            found = re.search(r'siteops_ingress_requests_total\{outcome="accepted",route="odoo"\} ([0-9.e+]+)', text)
            return float(found.group(1)) if found else 0.0

        poll(lambda: webhooks_accepted() > 0, 120, "an Odoo webhook accepted by the ingress", interval=2)

        # The first scans ran on the demo data: exactly the planted findings, each with its
        # activity in the simulated Odoo and its webhook delivery.
        truth = json.loads((var / "odoo-truth.json").read_text())
        planted = sum(len(v["ids"]) if "ids" in v else sum(len(x["ids"]) for x in v.values())
                      for site in truth["sites"].values() for k, v in site.items()
                      if k in ("aging_transfers", "overdue_receipts", "aging_backorders", "stock_anomalies"))

        kinds = ", ".join(f"'{k}'" for k in sorted(SCAN_KINDS))
        poll(lambda: sql(f"select count(*) from findings where kind in ({kinds})") >= planted, 120,
             "the first scans' findings", interval=0.5)
        found = findings()
        assert len(found) == planted
        assert {f["site"] for f in found} == {"CW", "NORTH", "SOUTH", "EAST", "WEB"}
        hooks = poll(lambda: (d := scan_deliveries(webhook_port)) and len(d) >= planted and d, 120,
                     "a webhook delivery per finding", interval=1)
        assert len(hooks) == planted
        import odoorpc

        odoo = odoorpc.ODOO("127.0.0.1", port=odoo_port, version="17.0")
        odoo.login("demo", "admin", "admin")

        def activities_per_finding() -> Counter[int]:
            acts = odoo.env["mail.activity"].search_read([("summary", "=like", "[siteops #%")], ["summary"])
            return Counter(int(a["summary"].split("#", 1)[1].split("]", 1)[0]) for a in acts)

        scan_ids = {f["id"] for f in found}  # scan findings only (shipment exceptions come and go)
        poll(lambda: sum(n for i, n in activities_per_finding().items() if i in scan_ids) >= planted, 60,
             "an Odoo activity per finding", interval=0.5)
        # Zero dead letters, and one activity per finding of every kind (quant and move
        # alerts included: they sit on the product or the picking, which have a chatter).
        with sqlite3.connect(var / "siteops.db") as db:
            assert db.execute("select task_name, error_message from dead_letters").fetchall() == []
        per_finding = activities_per_finding()
        for kind in ("aging_transfers", "overdue_receipts", "aging_backorders", "stock_anomalies"):
            of_kind = [f["id"] for f in found if f["kind"] == kind]
            assert of_kind and {i: per_finding[i] for i in of_kind} == dict.fromkeys(of_kind, 1), kind

        # Labels for the demo's ready pickings, and tracking moving through its timeline.
        poll(lambda: sql("select count(distinct site) from shipments") == 5, 120,
             "labels for every site's ready pickings", interval=0.5)
        poll(lambda: sql("select count(*) from shipments where status not in ('pre_transit', 'unknown')"), 120,
             "a parcel to move on from pre-transit", interval=0.5)
        listed = shipments()
        assert {s["site"] for s in listed} == {"CW", "NORTH", "SOUTH", "EAST", "WEB"}
        assert any(s["status"] not in ("pre_transit", "unknown") for s in listed)
        with sqlite3.connect(var / "siteops.db") as db:
            assert db.execute("select task_name, error_message from dead_letters").fetchall() == []

        # Approvals: the demo's shortages and people's drafts wait for a decision, in tiers, in
        # siteops and in Odoo. One transfer and one purchase order to an EDI vendor are decided
        # from the CLI here, before the EDI wait, so that their outcome is applied meanwhile.
        def both_kinds_pending() -> bool:
            return sql("select count(distinct kind) from approval_requests where status = 'pending' and "
                       "record_id is not null and kind in ('transfer', 'purchase')") == 2

        transfer, purchase, pending = poll(lambda: both_kinds_pending() and approvals_to_decide(odoo, cli_json), 120,
                                           "a pending transfer and purchase request", interval=2)
        assert all(r["tiers"] and r["record"]["model"] for r in pending)
        for request in (transfer, purchase):
            poll(lambda r=request: approval_activity(odoo, r["id"]), 30,
                 f"an Odoo activity for approval #{request['id']}")
        # Segregation of duties: the requester cannot approve their own request (and the
        # refusal decides nothing: every tier is still undecided below).
        refused = siteops("approvals", "decide", str(purchase["id"]), "--approve", "--as", purchase["requested_by"])
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert f"refused: {purchase['requested_by']} requested this approval" in refused.stderr
        decide_every_tier(transfer["id"], cli_json, siteops)
        before = decide_every_tier(purchase["id"], cli_json, siteops)
        assert before["status"] == "pending" and not any(t["decided_by"] for t in before["tiers"])

        # EDI: the demo's confirmed orders went to the simulated supplier and its answers came back.
        poll(lambda: sql("select count(*) from edi_exchanges where direction = 'out' and doc_type in "
                         "('850', 'ORDERS') and state = 'acknowledged' and responded_at is not null") >= 1, 180,
             "an order sent, acknowledged and answered", interval=2)
        assert sql("select count(*) from edi_exchanges where direction = 'in' and state = 'error'") == 0

        # Triage: the sample customer messages came in through the ingress; each is classified
        # and routed to a site, or waits for a person when the model is unsure.
        poll(lambda: sql("select count(*) from triage_messages where status != 'new'") >= 12, 120,
             "the sample messages to be triaged", interval=0.5)
        messages = cli_json("triage")
        assert len(messages) == 12 and {m["status"] for m in messages} <= {"routed", "review"}
        assert any(m["status"] == "routed" for m in messages) and any(m["status"] == "review" for m in messages)

        # The decisions' outcome, as a user sees it: the transfer confirmed in Odoo, the purchase
        # order confirmed there and sent to its supplier by EDI.
        picking, order = transfer["record"]["id"], purchase["record"]["id"]
        def applied_in_store(request_id: int) -> int:
            return sql("select count(*) from approval_requests where id = ? and applied is not null", request_id)

        poll(lambda: applied_in_store(transfer["id"]) and applied_in_store(purchase["id"]), 60,
             "the approved requests applied", interval=0.5)
        assert applied(transfer["id"], cli_json) == \
            "transfer confirmed"
        assert odoo.env["stock.picking"].read([picking], ["state"])[0]["state"] in ("waiting", "confirmed",
                                                                                    "assigned")
        done = applied(purchase["id"], cli_json)
        assert done is not None
        assert done.startswith("purchase order confirmed; EDI dispatch enqueued"), done
        po = odoo.env["purchase.order"].read([order], ["state", "name"])[0]
        assert po["state"] == "purchase"
        poll(lambda: sql("select count(*) from edi_exchanges where direction = 'out' and doc_type in "
                         f"('850', 'ORDERS') and odoo_model = 'purchase.order' and odoo_id = {int(order)} "
                         f"and business_key = '{po['name']}'") == 1, 60, "the approved order sent by EDI")
        with sqlite3.connect(var / "siteops.db") as db:
            assert db.execute("select task_name, error_message from dead_letters").fetchall() == []

        # What a person sees, in a real headless Chromium (tests/e2e/screenshots.py).
        shoot_the_stack(tmp_path, env, var, flower_port, webhook_port)
    finally:
        stop(run, log)
    # The workers stopped before the simulators they call: their last tasks finished, none
    # was left retrying against a simulator that had already gone.
    with sqlite3.connect(var / "siteops.db") as db:
        assert db.execute("select task_name, error_message from job_runs where state = 'retrying' and "
                          "(error_message like '%refused%' or error_message like '%reset by peer%')").fetchall() == []

    # A second `make run` keeps the state: the same findings (not reopened, not re-alerted).
    scans_before = complete_scans()
    log2 = tmp_path / "run2.out"
    run = start(log2)
    try:
        poll(lambda: "siteops is running" in log2.read_text() or run.poll() is not None, 300, "the second start")
        poll(lambda: complete_scans() >= scans_before + 20, 120, "the second run's first scans")
        again = findings()
        assert sorted((f["id"], f["first_seen"]) for f in again) == sorted((f["id"], f["first_seen"]) for f in found)
        assert {f["status"] for f in again} == {"open"}
        assert scan_deliveries(webhook_port) == {}
        # The supervisor itself SIGKILLed (the OOM killer, `kill -9`): nobody is left to stop
        # its children, so the kernel's parent-death signal must, for every part.
        assert len(processes_with(str(var))) >= 15
        run.send_signal(signal.SIGKILL)
        run.wait(10)
        poll(lambda: not processes_with(str(var)), 60, "every process of the killed stack to exit", interval=0.2)
    finally:
        if run.poll() is None:
            stop(run, log2)
