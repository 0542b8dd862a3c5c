"""Fetch N open pickings with their partner and operation type: the connector vs naive odoorpc.

    .venv/bin/python bench/odoo_fetch.py [--n 2000] [--scale 5] [--page-size 2000]

Both run against the same simulated Odoo 17 (a subprocess, so the client's CPU is
measured alone). The naive way is how odoorpc code is usually written: `browse()` and
attribute access, which costs a request per record per relation (odoo.md §1.6). The
anchor: at N = 2,000 the connector needs at least 50x fewer calls and 20x less time.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import odoorpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from siteops.connectors.odoo import OdooClient, OdooConfig  # noqa: E402

DOMAIN: list[Any] = [("state", "not in", ["done", "cancel"])]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def requests_served(url: str) -> int:
    with urllib.request.urlopen(f"{url}/__sim__/requests", timeout=30) as resp:
        return len(json.loads(resp.read()))


def naive(url: str, port: int, n: int) -> tuple[list[tuple[Any, ...]], float]:
    start = time.perf_counter()
    odoo = odoorpc.ODOO("127.0.0.1", port=port, timeout=60)
    odoo.login("demo", "admin", "admin")
    pickings = odoo.env["stock.picking"]
    ids = pickings.search(DOMAIN, limit=n, order="id")
    rows = [(p.id, p.name, p.partner_id.name, p.picking_type_id.name) for p in pickings.browse(ids)]
    return rows, time.perf_counter() - start


def connector(url: str, n: int, page_size: int) -> tuple[list[tuple[Any, ...]], float, float]:
    start = time.perf_counter()
    client = OdooClient(OdooConfig(url=url, db="demo", login="admin", password="admin", protocol="jsonrpc"),
                        site="bench")
    client.version  # connect and log in (counted in wall time and calls, not in per-record CPU)  # noqa: B018
    cpu = time.process_time()
    rows = []
    for r in client.iter_search_read("stock.picking", DOMAIN, ["name", "partner_id", "picking_type_id"],
                                     page_size=min(page_size, n)):
        rows.append((r["id"], r["name"], r["partner_id"][1] if r["partner_id"] else False,
                     r["picking_type_id"][1].split(": ", 1)[-1]))
        if len(rows) == n:
            break
    return rows, time.perf_counter() - start, time.process_time() - cpu


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--scale", type=float, default=5.0)
    p.add_argument("--page-size", type=int, default=2000)
    args = p.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    sim = subprocess.Popen([sys.executable, "-m", "siteops.sim.odoo", "--port", str(port), "--scale",
                            str(args.scale)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert sim.stdout is not None
        banner = sim.stdout.readline()  # blocks until the data set is built and the port listens
        if "listening" not in banner:
            raise SystemExit(f"simulator did not start: {banner!r}")
        before = requests_served(url)
        fast, fast_time, fast_cpu = connector(url, args.n, args.page_size)
        mid = requests_served(url)
        slow, slow_time = naive(url, port, args.n)
        after = requests_served(url)
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    if len(fast) < args.n:
        raise SystemExit(f"only {len(fast)} open pickings; raise --scale")
    assert sorted(fast) == sorted(slow), "both ways must fetch the same data"
    fast_calls, slow_calls = mid - before, after - mid
    print(f"N = {args.n} open pickings with partner and operation type (Odoo 17 simulator, scale {args.scale})")
    print(f"  connector (iter_search_read, page {min(args.page_size, args.n)}): {fast_calls:6d} calls "
          f"{fast_time:8.3f} s")
    print(f"  naive odoorpc (browse + attributes):        {slow_calls:6d} calls {slow_time:8.3f} s")
    print(f"  ratio: {slow_calls / fast_calls:.0f}x fewer calls, {slow_time / fast_time:.0f}x less time "
          f"(anchor: >= 50x and >= 20x)")
    print(f"  connector client CPU (fetch, after login): {fast_cpu / len(fast) * 1000 * 1000:.1f} ms "
          f"per 1,000 records")
    ok = slow_calls / fast_calls >= 50 and slow_time / fast_time >= 20
    print("  PASS" if ok else "  BELOW ANCHOR")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
