"""An Odoo 16/17/18/19 simulator that unmodified odoorpc (JSON-RPC) and JSON-2 clients talk to.

    python -m siteops.sim.odoo --port 8069 --seed 7 --scale 1 [--odoo-version 17]

Entry points for the CLI:

* `main(argv)`: the command line above; returns an exit status.
* `serve(...)`: build the data set and serve until interrupted (blocking).
* `start(...)`: the same in a background thread; returns the running `OdooSim`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from siteops.sim.odoo.dataset import SiteSpec, demo_sites, generate, write_truth
from siteops.sim.odoo.server import OdooSim
from siteops.sim.odoo.store import Database

__all__ = ["Database", "OdooSim", "SiteSpec", "generate", "main", "serve", "start"]


def start(*, host: str = "127.0.0.1", port: int = 8069, seed: int = 7, scale: float = 1.0,
          odoo_version: int = 17, db: str = "demo", login: str = "admin", password: str = "admin",
          api_key: str = "admin", truth_path: str | Path | None = None, sites: Any = None,
          now: datetime | None = None) -> OdooSim:
    """Generate the data set for `sites` (default: the registry) and serve it in a thread."""
    database, truth = generate(sites if sites is not None else demo_sites(), seed=seed, scale=scale,
                               version=odoo_version, now=now, db_name=db, login=login, password=password,
                               api_key=api_key)
    if truth_path:
        write_truth(truth, truth_path)
    sim = OdooSim(database, host=host, port=port)
    sim.server.truth = truth
    return sim.start()


def serve(*, on_ready: Callable[[OdooSim], None] | None = None, **options: Any) -> None:
    """`start(**options)`, then block until SIGINT/SIGTERM; `on_ready(sim)` runs once it listens."""
    sim = start(**options)
    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        if on_ready:
            on_ready(sim)
        stop.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sim.stop()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m siteops.sim.odoo", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8069)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--odoo-version", type=int, choices=(16, 17, 18, 19), default=17)
    p.add_argument("--db", default="demo")
    p.add_argument("--login", default="admin")
    p.add_argument("--password", default="admin")
    p.add_argument("--api-key", default="admin")
    p.add_argument("--truth", default=None, help="write the ground truth JSON here")
    p.add_argument("--sites", default=None, help="sites.toml to build the network from")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    sites: Any = None
    if args.sites:
        from siteops.config.sites import load_registry

        sites = load_registry(args.sites)

    def ready(sim: OdooSim) -> None:
        # The first line is the contract for scripts waiting on start-up: it ends with the URL.
        counts = {k: v for k, v in sorted(sim.server.truth["counts"].items()) if v} if sim.server.truth else {}
        lines = [
            f"Odoo {args.odoo_version}.0 simulator listening on {sim.url}",
            f"  database={args.db} login={args.login} password={args.password} api_key={args.api_key}",
            f"  records: {counts.get('stock.picking', 0)} pickings, {counts.get('stock.move', 0)} moves, "
            f"{counts.get('stock.quant', 0)} quants",
        ]
        if args.truth:
            lines.append(f"  ground truth: {args.truth}")
        lines.append("  faults: POST /__sim__/faults, request log: GET /__sim__/requests")
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()

    serve(on_ready=ready, host=args.host, port=args.port, seed=args.seed, scale=args.scale,
          odoo_version=args.odoo_version, db=args.db, login=args.login, password=args.password,
          api_key=args.api_key, truth_path=args.truth, sites=sites)
    return 0
