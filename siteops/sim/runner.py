"""`siteops run`: the whole platform on one machine, started and supervised by one command.

Private Redis (persistent under var/redis, so a second run keeps the state), the store,
one worker per site, a platform worker, beat and Flower. Children run in their own
process groups: Ctrl-C stops every one of them, and nothing is left behind.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx
import redis
from rich.console import Console
from rich.table import Table

from siteops.config.settings import get_settings
from siteops.config.sites import get_registry
from siteops.sim.embedded import EmbeddedError, RedisServer, port_in_use, wait_until
from siteops.worker.recovery import WORKER_KEY, node_of

console = Console(soft_wrap=True)
RESTART_LIMIT = 5  # restarts of one child per 5 minutes before the stack gives up on it


@dataclass
class Child:
    name: str
    argv: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)

    def start(self, env: dict[str, str]) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as fh:
            self.process = subprocess.Popen(self.argv, stdout=fh, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=env, start_new_session=True)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal_group(self, sig: int) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)


def flower_credentials(var: Path) -> tuple[str, Path | None]:
    """FLOWER_BASIC_AUTH from the environment, or a generated one kept in var/ (0600)."""
    if os.environ.get("FLOWER_BASIC_AUTH"):
        return os.environ["FLOWER_BASIC_AUTH"], None
    path = var / "flower-auth"
    if not path.exists():
        path.write_text(f"admin:{secrets.token_urlsafe(12)}\n")
        path.chmod(0o600)
    return path.read_text().strip(), path


def secret_file(var: Path, name: str) -> Path:
    """A generated secret kept in var/ (0600), the same across runs."""
    path = var / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(24) + "\n")
        path.chmod(0o600)
    return path


def run_stack(*, concurrency: int = 1, flower_port: int = 5555, exporter_port: int = 9808, odoo_port: int = 8069,
              webhook_port: int = 8070, odoo_url: str | None = None, initial_scans: bool = True,
              carrier_ports: tuple[int, int] = (8071, 8072)) -> int:
    settings = get_settings()
    registry = get_registry()
    var = settings.var.resolve()
    broker = urlparse(settings.broker_url)
    if broker.scheme != "redis" or broker.hostname not in ("127.0.0.1", "localhost"):
        console.print(f"[red]siteops run starts its own Redis; SITEOPS_BROKER_URL must point at "
                      f"127.0.0.1 (got {settings.broker_url})[/]")
        return 2
    port = broker.port or 6379
    if port_in_use(port):
        console.print(f"[red]port {port} is busy: is another `make run` (or Redis) running there? "
                      f"Set SITEOPS_BROKER_URL=redis://127.0.0.1:<port>/0 to use another.[/]")
        return 2
    ports = [(flower_port, "Flower; pass --flower-port"), (exporter_port, "exporter; pass --exporter-port"),
             (webhook_port, "webhook receiver; pass --webhook-port"),
             (carrier_ports[0], "carrier simulator; pass --carrier-port"),
             (carrier_ports[1], "carrier webhooks; pass --carrier-webhook-port")]
    if odoo_url is None:
        ports.append((odoo_port, "Odoo simulator; pass --odoo-port"))
    for busy, what in ports:
        if port_in_use(busy):
            console.print(f"[red]port {busy} ({what}) is busy.[/]")
            return 2

    env = dict(os.environ, SITEOPS_VAR_DIR=str(var), SITEOPS_BROKER_URL=settings.broker_url,
               PYTHONUNBUFFERED="1")
    auth, auth_file = flower_credentials(var)
    env["FLOWER_BASIC_AUTH"] = auth
    # Fresh Prometheus multiprocess files for this stack (counters of old pids go).
    prom = var / "prometheus"
    shutil.rmtree(prom, ignore_errors=True)
    prom.mkdir(parents=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(prom)
    # Odoo: the simulator with the demo network, unless a real Odoo's URL is given (its
    # credentials then come from the environment, as in production).
    if odoo_url is None:
        env.update(SITEOPS_ODOO_URL=f"http://127.0.0.1:{odoo_port}", SITEOPS_ODOO_DB="demo",
                   SITEOPS_ODOO_LOGIN="admin", SITEOPS_ODOO_PASSWORD="admin")
    else:
        env["SITEOPS_ODOO_URL"] = odoo_url
    # Alerts go to the demo webhook receiver (it stands in for an n8n workflow).
    env.update(SITEOPS_WEBHOOK_URL=f"http://127.0.0.1:{webhook_port}/siteops",
               SITEOPS_WEBHOOK_SECRET_FILE=str(secret_file(var, "webhook-secret")))

    server = RedisServer(port=port, data_dir=var / "redis", persistent=True)
    siteops = [sys.executable, "-m", "siteops.cli"]
    logs = var / "log"
    children = [
        Child(f"worker {s.code}", [*siteops, "worker", "--site", s.code, "-c", str(concurrency)],
              logs / f"worker-{s.code}.log")
        for s in registry
    ]
    sims = []
    if odoo_url is None:
        sims.append(Child("odoo simulator", [*siteops, "sim", "odoo", "--port", str(odoo_port), "--seed", "7",
                                             "--scale", "1", "--truth", str(var / "odoo-truth.json")],
                          logs / "odoo-sim.log"))
    sims.append(Child("webhook receiver", [*siteops, "sim", "webhook", "--port", str(webhook_port)],
                      logs / "webhook-sim.log"))
    # Shipping (issue 10): the carrier simulator and the tracking webhook endpoint.
    from siteops.sim.carrier.run import carrier_children, carrier_env

    env.update(carrier_env(var, carrier_ports[0]))
    sims += [Child(name, argv, log) for name, argv, log in carrier_children(siteops, var, logs, *carrier_ports)]
    # EDI: a simulated supplier answering our orders in the partners' mailbox directories.
    sims.append(Child("edi supplier", [*siteops, "sim", "edi"], logs / "edi-sim.log"))
    children = sims + children
    children += [
        Child("worker platform", [*siteops, "worker", "--platform", "-c", "1"], logs / "worker-platform.log"),
        Child("beat", [*siteops, "beat"], logs / "beat.log"),
        Child("flower", [*siteops, "flower", "--port", str(flower_port)], logs / "flower.log"),
        Child("exporter", [*siteops, "exporter", "--port", str(exporter_port)], logs / "exporter.log"),
    ]

    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        with console.status("starting Redis…") as status:
            server.start()
            status.update("migrating the store…")
            from siteops.store import upgrade

            upgrade()
            for child in sims:
                status.update(f"starting the {child.name}…")
                child.start(env)
            if odoo_url is None:
                wait_until(lambda: _http_ok(f"http://127.0.0.1:{odoo_port}/web/webclient/version_info", post=True)
                           or stopping, 120, "the Odoo simulator", interval=0.3)
            for child in children:
                if child in sims:
                    continue
                status.update(f"starting {child.name}…")
                child.start(env)
            client = redis.Redis(port=port)
            expected = {f"{s.code}@" for s in registry} | {"platform@"}

            def workers_up() -> bool:
                names = {node_of(k.decode()[len(WORKER_KEY):]) for k in client.scan_iter(match=WORKER_KEY + "*")}
                missing = [e for e in expected if not any(n.startswith(e) for n in names)]
                status.update(f"waiting for workers: {', '.join(m.rstrip('@') for m in sorted(missing)) or 'ready'}")
                for child in children:
                    if not child.alive():
                        raise EmbeddedError(f"{child.name} exited; see {child.log}")
                return not missing and not stopping

            wait_until(workers_up, 90, "every worker to report", interval=0.3)
            status.update("waiting for Flower…")
            wait_until(lambda: _http_ok(f"http://127.0.0.1:{flower_port}/healthcheck") or stopping, 60, "Flower",
                       interval=0.3)
            status.update("waiting for the exporter…")
            wait_until(lambda: _http_ok(f"http://127.0.0.1:{exporter_port}/metrics") or stopping, 60,
                       "the exporter", interval=0.3)
        if initial_scans:
            _first_scans(registry, env)
            from siteops.sim.carrier.run import first_labels

            first_labels(registry)  # labels for the demo's ready pickings
        _print_summary(settings.broker_url, flower_port, exporter_port, auth_file, var, children)
        if odoo_url is None:
            console.print(f"Odoo simulator: http://127.0.0.1:{odoo_port} (database demo, login admin, password "
                          f"admin); ground truth in {var / 'odoo-truth.json'}")
        console.print(f"webhook receiver: http://127.0.0.1:{webhook_port}/ (GET lists the alerts it received)")
        console.print(f"carrier simulator (EasyPost API): http://127.0.0.1:{carrier_ports[0]}/v2; labels and "
                      f"tracking: `siteops shipments`")
        while not stopping:
            _supervise(children, env)
            time.sleep(0.5)
        return 0
    except EmbeddedError as exc:
        console.print(f"[red]{exc}[/]")
        return 1
    finally:
        console.print("stopping…")
        for child in children:
            child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for child in children:
            if child.process is not None:
                try:
                    child.process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.signal_group(signal.SIGKILL)
                    child.process.wait(5)
        server.stop()
        console.print("stopped: every process this run started has exited.")


def _http_ok(url: str, post: bool = False) -> bool:
    try:
        if post:
            body = {"jsonrpc": "2.0", "method": "call", "params": {}}
            return httpx.post(url, json=body, timeout=2).status_code == 200
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _first_scans(registry: object, env: dict[str, str]) -> None:
    """One scan of every kind for every site now, rather than at beat's next slot."""
    from siteops.rules.findings import KINDS

    os.environ.update({k: v for k, v in env.items() if k.startswith("SITEOPS_")})
    from siteops.celery_app import app

    app.loader.import_default_modules()
    for site in registry:  # type: ignore[attr-defined]
        for kind in KINDS:
            app.tasks[f"siteops.scan.{kind}"].delay(site.code)
        app.tasks["siteops.edi.scan_orders"].delay(site.code)  # confirmed orders to EDI partners go out now
    console.print("first scans enqueued for every site: `siteops findings` shows what they found")


def _supervise(children: list[Child], env: dict[str, str]) -> None:
    now = time.monotonic()
    for child in children:
        if child.alive() or child.process is None:
            continue
        child.restarts = [t for t in child.restarts if now - t < 300]
        if len(child.restarts) >= RESTART_LIMIT:
            continue
        console.print(f"[yellow]{child.name} exited with {child.process.returncode}; restarting "
                      f"(log: {child.log})[/]")
        child.restarts.append(now)
        child.start(env)


def _print_summary(broker: str, flower_port: int, exporter_port: int, auth_file: Path | None, var: Path,
                   children: list[Child]) -> None:
    table = Table(title="siteops is running", show_header=False)
    table.add_column()
    table.add_column()
    table.add_row("broker", f"{broker} (private redis-server, data in {var / 'redis'})")
    table.add_row("store", get_settings().effective_database_url)
    where = f"password in {auth_file}" if auth_file else "credentials from FLOWER_BASIC_AUTH"
    table.add_row("Flower", f"http://127.0.0.1:{flower_port}/  ({where})")
    table.add_row("metrics", f"http://127.0.0.1:{exporter_port}/metrics  (Flower's own: /metrics on Flower)")
    for child in children:
        pid = child.process.pid if child.process else "-"
        table.add_row(child.name, f"pid {pid}, log {child.log}")
    table.add_row("try", "siteops enqueue siteops.ops.ping --site NORTH --wait")
    console.print(table)
    console.print("Ctrl-C stops everything.")
