"""One full scan cycle (every site, every scan kind) at scale, against its floor.

The floor is the time of merely fetching the same records with the same calls (domains,
fields, pages) and doing nothing with them. The cycle adds judging, the finding
lifecycle and the store. Each run is a fresh process, so its peak memory (max RSS) is
its own; the cycle runs at two scales to show that memory follows the anomalies, not the
number of records. Prints cycle time, Odoo calls, records, peak memory and the ratio to
the floor (goal: at most 1.5x).

    python bench/scan_cycle.py [--scales 21,84]   # 84: about 200,000 pickings
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
KINDS = ("aging_transfers", "overdue_receipts", "stock_anomalies", "aging_backorders")


class Recorder:
    """A connector wrapper that counts calls and records the reads (to replay as the floor)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.reads: list[list[Any]] = []

    def search_read(self, model: str, domain: list[Any], fields: list[str], **kw: Any) -> list[dict]:
        self.reads.append(["search_read", model, domain, list(fields), kw])
        return self.client.search_read(model, domain, fields, **kw)

    def iter_search_read(self, model: str, domain: list[Any], fields: list[str], page_size: int = 500) -> Any:
        self.reads.append(["iter_search_read", model, domain, list(fields), {"page_size": page_size}])
        return self.client.iter_search_read(model, domain, fields, page_size=page_size)

    def read(self, model: str, ids: list[int], fields: list[str]) -> list[dict]:
        self.reads.append(["read", model, list(ids), list(fields), {}])
        return self.client.read(model, ids, fields)


def calls_made() -> float:
    from prometheus_client import REGISTRY

    return sum(s.value for m in REGISTRY.collect() if m.name == "siteops_connector_calls"
               for s in m.samples if s.name.endswith("_total"))


def child(mode: str, reads_file: Path) -> None:
    from siteops.config.sites import get_registry
    from siteops.connectors.odoo import get_client
    from siteops.store import upgrade

    client = get_client()
    client.search_read("res.users", [("id", "=", 1)], ["id"])  # log in before the clock starts
    base = calls_made()
    records = 0
    t0 = time.perf_counter()
    if mode == "cycle":
        from siteops.services.scans import scan_once

        upgrade()
        base, t0 = calls_made(), time.perf_counter()
        recorder = Recorder(client)
        for site in get_registry():
            for kind in KINDS:
                summary, _ = scan_once(site.code, kind, recorder)
                records += summary["records_read"]
        reads_file.write_text(json.dumps(recorder.reads))
    else:  # floor: the same reads, nothing done with the rows
        for op, model, arg, fields, kw in json.loads(reads_file.read_text()):
            if op == "read":
                records += len(client.read(model, arg, fields))
            elif op == "search_read":
                records += len(client.search_read(model, [tuple(t) if isinstance(t, list) else t for t in arg],
                                                  fields, **kw))
            else:
                for _ in client.iter_search_read(model, [tuple(t) if isinstance(t, list) else t for t in arg],
                                                 fields, **kw):
                    records += 1
    elapsed = time.perf_counter() - t0
    print(json.dumps({"seconds": elapsed, "calls": calls_made() - base, "records": records,
                      "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def run_child(mode: str, env: dict[str, str], reads_file: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--reads", str(reads_file)], env=env,
                         cwd=ROOT, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_scale(scale: float, rounds: int, tmp: Path) -> dict[str, Any]:
    from siteops.sim.embedded import free_port, wait_until

    port = free_port()
    with open(tmp / f"sim-{scale}.log", "wb") as sim_log:
        sim = subprocess.Popen([sys.executable, "-m", "siteops.cli", "sim", "odoo", "--port", str(port), "--scale",
                                str(scale)], cwd=ROOT, stdout=sim_log, stderr=subprocess.STDOUT)
    try:
        import httpx

        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/__sim__/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return sim.poll() is not None

        started = time.monotonic()
        wait_until(up, 1800, f"the simulator at scale {scale}", interval=0.5)
        health = httpx.get(f"http://127.0.0.1:{port}/__sim__/health", timeout=10).json()
        print(f"scale {scale:g}: {health['records']['stock.picking']:,} pickings, "
              f"{health['records']['stock.move']:,} moves, {health['records']['stock.quant']:,} quants "
              f"(generated and served in {time.monotonic() - started:.0f} s)", flush=True)
        reads = tmp / f"reads-{scale}.json"
        results: dict[str, list[dict[str, float]]] = {"cycle": [], "floor": []}
        for r in range(rounds):
            env = {**os.environ, "SITEOPS_ODOO_URL": f"http://127.0.0.1:{port}", "SITEOPS_ODOO_DB": "demo",
                   "SITEOPS_ODOO_LOGIN": "admin", "SITEOPS_ODOO_PASSWORD": "admin",
                   "SITEOPS_DATABASE_URL": f"sqlite:///{tmp / f'store-{scale}-{r}.db'}"}
            for mode in ("cycle", "floor"):  # the floor replays what the cycle read
                results[mode].append(run_child(mode, env, reads))
        return {mode: {k: statistics.median(x[k] for x in rs) for k in rs[0]} for mode, rs in results.items()}
    finally:
        sim.terminate()
        sim.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scales", default="21,84")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", choices=("cycle", "floor"))
    parser.add_argument("--reads", type=Path)
    opts = parser.parse_args()
    if opts.child:
        child(opts.child, opts.reads)
        return
    tmp = Path(tempfile.mkdtemp(prefix="siteops-bench-"))
    os.environ.setdefault("SITEOPS_VAR_DIR", str(tmp / "var"))
    rows = []
    try:
        for scale in (float(s) for s in opts.scales.split(",")):
            res = bench_scale(scale, opts.rounds, tmp)
            cycle, floor = res["cycle"], res["floor"]
            rows.append((scale, cycle, floor))
            print(f"  cycle: {cycle['seconds']:.2f} s, {cycle['calls']:.0f} Odoo calls, {cycle['records']:,.0f} "
                  f"records, peak memory {cycle['max_rss_mb']:.0f} MB")
            print(f"  floor: {floor['seconds']:.2f} s, {floor['calls']:.0f} Odoo calls (same reads, rows dropped)")
            print(f"  ratio: {cycle['seconds'] / floor['seconds']:.2f}x the floor (goal <= 1.5x)", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if len(rows) > 1:
        (s0, c0, _), (s1, c1, _) = rows[0], rows[-1]
        print(f"\nmemory: {c0['max_rss_mb']:.0f} MB at scale {s0:g}, {c1['max_rss_mb']:.0f} MB at scale {s1:g} "
              f"({s1 / s0:.0f}x the records)")


if __name__ == "__main__":
    main()
