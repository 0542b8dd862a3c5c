"""`siteops run`: the whole platform on one machine, started and supervised by one command.

Private Redis (persistent under var/redis, so a second run keeps the state), the store,
one worker per site, a platform worker, beat and Flower.

Stopping is the part that must never fail, whatever stops the supervisor:

- Ctrl-C, SIGTERM and SIGHUP (a closed terminal) stop the stack in order: every child is
  signalled *first*, and only then does the supervisor say so. Output goes through
  `SafeOutput`: when the reader of stdout is gone (`make run | tee` and Ctrl-C kills tee
  too; a closed terminal), a print is dropped instead of raising in the middle of the
  shutdown. A second signal while stopping kills what is left at once.
- Every child is in one process group (Redis leads it; not the terminal's group, so a
  Ctrl-C reaches only the supervisor, which then stops the children in order), and
  whatever is left of that group after the orderly stop (a killed worker's pool
  processes) is killed.
- When the supervisor itself dies (SIGKILL, OOM killer), the kernel sends every child
  SIGTERM: each is started with a parent-death signal (`prctl(PR_SET_PDEATHSIG)`), which
  survives the `exec` of `siteops worker` into Celery.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlparse

import httpx
import redis
from rich.console import Console
from rich.table import Table

from siteops.config.settings import get_settings
from siteops.config.sites import get_registry
from siteops.sim.embedded import EmbeddedError, RedisServer, port_in_use, wait_until
from siteops.worker.recovery import WORKER_KEY, node_of

RESTART_LIMIT = 5  # restarts of one child per 5 minutes before the stack gives up on it
STOP_GRACE = 20.0  # seconds for the children's warm shutdown before they are killed
#: Parts `--without` can leave out (tests and small machines start only what they need).
OPTIONAL_PARTS = ("odoo", "webhook", "carrier", "edi", "ingress", "platform", "beat", "flower", "exporter", "scans")


class SafeOutput:
    """A text stream that never raises: once its reader is gone, writes are dropped.

    Why: the supervisor must finish stopping its children even when stdout is a pipe
    whose reader died (`make run | tee`, then Ctrl-C) or a terminal that was closed. On
    the first failed write, fd 1 is pointed at /dev/null so that the interpreter's own
    flush at exit cannot fail either (the recipe of the Python docs' note on SIGPIPE).
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.broken = False

    @property
    def encoding(self) -> str:
        return getattr(self.stream, "encoding", None) or "utf-8"

    def isatty(self) -> bool:
        try:
            return not self.broken and self.stream.isatty()
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        return self.stream.fileno()

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):  # BrokenPipeError (EPIPE), EIO of a closed terminal
                self._detach()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except (OSError, ValueError):
                self._detach()

    def _detach(self) -> None:
        self.broken = True
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)


output = SafeOutput(sys.stdout)
# Piped output (tee, logs) gets a wide console instead of rich's 80 columns.
console = Console(file=output, soft_wrap=True,  # type: ignore[arg-type]  # a TextIO in all but name
                  width=None if output.isatty() else 160)

# Loaded before any fork: the child only calls into it between fork and exec.
_libc: Any = None
if sys.platform.startswith("linux"):
    with contextlib.suppress(OSError):
        _libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> Callable[[], None]:
    """A preexec_fn: the child gets SIGTERM when `parent` (the supervisor) dies."""

    def preexec() -> None:
        if _libc is not None:
            _libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the supervisor died before prctl took effect
            os._exit(1)

    return preexec


class Group:
    """The one process group of everything a run starts (its leader is the first child)."""

    def __init__(self) -> None:
        self.pgid: int | None = None
        self.parent = os.getpid()

    def popen_options(self) -> dict[str, Any]:
        return {"process_group": self.pgid or 0, "preexec_fn": die_with_parent(self.parent)}

    def joined(self, pid: int) -> None:
        if self.pgid is None:
            self.pgid = pid

    def members(self) -> list[int]:
        """Pids still in the group (read from /proc: never signal a group id blindly)."""
        if self.pgid is None:
            return []
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) "
            if len(fields) > 2 and fields[2] == str(self.pgid) and fields[0] != "Z":
                found.append(int(entry.name))
        return found


@dataclass
class Child:
    name: str
    argv: list[str]
    log: Path
    env_drop: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)
    terminated: bool = False
    #: A stand-in for a system outside siteops (a simulator the workers call): stopped only
    #: after the workers, so their last tasks finish instead of retrying on a refused connection.
    outer: bool = False

    def start(self, env: dict[str, str], group: Group) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in env.items() if k not in self.env_drop}
        with open(self.log, "ab") as fh:
            try:
                self.process = subprocess.Popen(self.argv, stdout=fh, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, env=env, **group.popen_options())
            except PermissionError:  # the group emptied (every member exited): lead a new one
                group.pgid = None
                self.process = subprocess.Popen(self.argv, stdout=fh, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, env=env, **group.popen_options())
        group.joined(self.process.pid)
        self.terminated = False

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def send(self, sig: int) -> None:
        """Signal the child itself (a Celery worker stops its own pool processes)."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)


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


class Stopping(Exception):
    """A stop signal arrived while the stack was starting."""


class Supervisor:
    """Starts the children, restarts the ones that exit, and stops them all, in order."""

    def __init__(self, server: RedisServer, children: list[Child], env: dict[str, str]) -> None:
        self.server = server
        self.children = children
        self.env = env
        self.group = Group()
        self.stopping = False
        server.popen_options = self.group.popen_options()

    # --- signals: act first, talk later ------------------------------------------------

    def install_signals(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self.on_signal)

    def on_signal(self, signum: int, _frame: object) -> None:
        if self.stopping:  # a second Ctrl-C: stop waiting for warm shutdowns
            for child in self.children:
                child.send(signal.SIGKILL)
            return
        self.stopping = True
        self.terminate_children(outer=False)

    def terminate_children(self, *, outer: bool) -> None:
        for child in self.children:
            if not child.terminated and child.outer == outer:
                child.send(signal.SIGTERM)
                child.terminated = True

    # --- starting -----------------------------------------------------------------------

    def start_server(self) -> None:
        self.server.start()
        assert self.server.process is not None
        self.group.joined(self.server.process.pid)

    def start(self, child: Child) -> None:
        if self.stopping:
            raise Stopping
        child.start(self.env, self.group)

    def wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        wait_until(lambda: self.stopping or predicate(), timeout, what, interval=0.3)
        if self.stopping:
            raise Stopping

    def supervise(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if self.stopping or child.alive() or child.process is None:
                continue
            child.restarts = [t for t in child.restarts if now - t < 300]
            if len(child.restarts) >= RESTART_LIMIT:
                continue
            console.print(f"[yellow]{child.name} exited with {child.process.returncode}; restarting "
                          f"(log: {child.log})[/]")
            child.restarts.append(now)
            child.start(self.env, self.group)

    # --- stopping -----------------------------------------------------------------------

    def stop(self) -> None:
        """Signal first (never after a print that may fail), wait, kill what is left."""
        self.stopping = True
        self.terminate_children(outer=False)
        console.print("stopping…")
        deadline = time.monotonic() + STOP_GRACE
        for outer in (False, True):  # siteops's own processes first, then the simulators
            self.terminate_children(outer=outer)
            for child in self.children:
                if child.process is None or child.outer != outer:
                    continue
                try:
                    child.process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    console.print(f"[yellow]{child.name} did not stop within {STOP_GRACE:.0f}s: killed[/]")
                    child.send(signal.SIGKILL)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        child.process.wait(5)
        # Leftovers of the group (a killed worker's pool processes) go before Redis does, so
        # nothing is still talking to it; Redis stops last, saving its data.
        server_pid = self.server.process.pid if self.server.process else None
        self._kill_members(exclude=server_pid)
        self.server.stop()
        self._kill_members(exclude=None)
        console.print("stopped: every process this run started has exited.")

    def _kill_members(self, exclude: int | None) -> None:
        for pid in self.group.members():
            if pid != exclude and pid != os.getpid():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        for child in self.children:
            if child.process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.process.wait(5)


def run_stack(*, concurrency: int = 1, flower_port: int = 5555, exporter_port: int = 9808, odoo_port: int = 8069,
              webhook_port: int = 8070, odoo_url: str | None = None, initial_scans: bool = True,
              sites: Iterable[str] | None = None, without: Iterable[str] = (),
              carrier_port: int = 8071, ingress_port: int = 8073) -> int:
    settings = get_settings()
    registry = get_registry()
    skip = set(without)
    if not initial_scans:
        skip.add("scans")
    unknown = skip - set(OPTIONAL_PARTS)
    if unknown:
        console.print(f"--without {', '.join(sorted(unknown))}: unknown part; parts: {', '.join(OPTIONAL_PARTS)}",
                      markup=False)
        return 2
    codes = list(registry.codes) if sites is None else [registry.get(c).code for c in sites]
    var = settings.var.resolve()
    broker = urlparse(settings.broker_url)
    if broker.scheme != "redis" or broker.hostname not in ("127.0.0.1", "localhost"):
        console.print(f"siteops run starts its own Redis; SITEOPS_BROKER_URL must point at "
                      f"127.0.0.1 (got {settings.broker_url})", style="red", markup=False)
        return 2
    port = broker.port or 6379
    if port_in_use(port):
        console.print(f"port {port} is busy: is another `make run` (or Redis) running there? "
                      f"Set SITEOPS_BROKER_URL=redis://127.0.0.1:<port>/0 to use another.", style="red", markup=False)
        return 2
    use_odoo_sim = odoo_url is None and "odoo" not in skip
    ports = [(p, what) for p, what, part in [
        (flower_port, "Flower; pass --flower-port", "flower"),
        (exporter_port, "exporter; pass --exporter-port", "exporter"),
        (webhook_port, "webhook receiver; pass --webhook-port", "webhook"),
        (carrier_port, "carrier simulator; pass --carrier-port", "carrier"),
        (ingress_port, "ingress; pass --ingress-port", "ingress")] if part not in skip]
    if use_odoo_sim:
        ports.append((odoo_port, "Odoo simulator; pass --odoo-port"))
    for busy, what in ports:
        if port_in_use(busy):
            console.print(f"port {busy} ({what}) is busy.", style="red", markup=False)
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

    siteops = [sys.executable, "-m", "siteops.cli"]
    logs = var / "log"
    sims = []
    if use_odoo_sim:
        sims.append(Child("odoo simulator", [*siteops, "sim", "odoo", "--port", str(odoo_port), "--seed", "7",
                                             "--scale", "1", "--truth", str(var / "odoo-truth.json")],
                          logs / "odoo-sim.log", outer=True))
    if "webhook" not in skip:
        sims.append(Child("webhook receiver", [*siteops, "sim", "webhook", "--port", str(webhook_port)],
                          logs / "webhook-sim.log", outer=True))
    if "carrier" not in skip:
        # Shipping: the carrier simulator, pushing signed tracking webhooks to the ingress.
        from siteops.sim.carrier.run import carrier_children, carrier_env

        env.update(carrier_env(var, carrier_port))
        sims += [Child(name, argv, log, outer=True) for name, argv, log in
                 carrier_children(siteops, var, logs, carrier_port, webhook_url=f"http://127.0.0.1:{ingress_port}")]
    if "edi" not in skip:
        # EDI: a simulated supplier answering our orders in the partners' mailbox directories.
        sims.append(Child("edi supplier", [*siteops, "sim", "edi"], logs / "edi-sim.log", outer=True))
    if "ingress" not in skip:
        # The ingress: Odoo's automation webhooks and the carrier's tracking webhooks.
        env["SITEOPS_INGRESS_ODOO_TOKEN_FILE"] = str(secret_file(var, "ingress-odoo-token"))
        env["SITEOPS_INGRESS_MESSAGES_TOKEN_FILE"] = str(secret_file(var, "ingress-messages-token"))
        sims.append(Child("ingress", [*siteops, "ingress", "--port", str(ingress_port)], logs / "ingress.log"))
    platform = [] if "platform" in skip else [
        Child("worker platform", [*siteops, "worker", "--platform", "-c", "1"], logs / "worker-platform.log")]
    rest = [
        Child(f"worker {code}", [*siteops, "worker", "--site", code, "-c", str(concurrency)],
              logs / f"worker-{code}.log")
        for code in codes
    ] + platform
    if "beat" not in skip:
        rest.append(Child("beat", [*siteops, "beat"], logs / "beat.log"))
    if "flower" not in skip:
        # Flower keeps its own metrics in its own /metrics: without the multiprocess folder,
        # its flower_* series never reach the files the exporter sums.
        rest.append(Child("flower", [*siteops, "flower", "--port", str(flower_port)], logs / "flower.log",
                          env_drop=("PROMETHEUS_MULTIPROC_DIR",)))
    if "exporter" not in skip:
        rest.append(Child("exporter", [*siteops, "exporter", "--port", str(exporter_port)], logs / "exporter.log"))
    children = sims + rest

    sup = Supervisor(RedisServer(port=port, data_dir=var / "redis", persistent=True), children, env)
    sup.install_signals()
    try:
        with console.status("starting Redis…") as status:
            sup.start_server()
            status.update("migrating the store…")
            from siteops.store import upgrade

            upgrade()
            for child in sims:
                status.update(f"starting the {child.name}…")
                sup.start(child)
            if use_odoo_sim:
                sup.wait(lambda: _http_ok(f"http://127.0.0.1:{odoo_port}/web/webclient/version_info", post=True),
                         120, "the Odoo simulator")
            for child in rest:
                status.update(f"starting {child.name}…")
                sup.start(child)
            client = redis.Redis(port=port)
            expected = {f"{c}@" for c in codes} | (set() if "platform" in skip else {"platform@"})

            def workers_up() -> bool:
                names = {node_of(k.decode()[len(WORKER_KEY):]) for k in client.scan_iter(match=WORKER_KEY + "*")}
                missing = [e for e in expected if not any(n.startswith(e) for n in names)]
                status.update(f"waiting for workers: {', '.join(m.rstrip('@') for m in sorted(missing)) or 'ready'}")
                for child in children:
                    if not child.alive():
                        raise EmbeddedError(f"{child.name} exited; see {child.log}")
                return not missing

            # A child that exits fails this at once; the deadline is only for a slow machine
            # (six workers importing Celery at once on two busy cores took over 90 s).
            sup.wait(workers_up, 180, "every worker to report")
            if "flower" not in skip:
                status.update("waiting for Flower…")
                sup.wait(lambda: _http_ok(f"http://127.0.0.1:{flower_port}/healthcheck"), 60, "Flower")
            if "exporter" not in skip:
                status.update("waiting for the exporter…")
                sup.wait(lambda: _http_ok(f"http://127.0.0.1:{exporter_port}/metrics"), 60, "the exporter")
        if use_odoo_sim and "ingress" not in skip:
            # Odoo's automation rules: each site's records post to the ingress, as an
            # operator would configure them in Odoo (Settings > Automation Rules).
            sup.wait(lambda: _http_ok(f"http://127.0.0.1:{ingress_port}/healthz"), 60, "the ingress")
            count = register_odoo_rules(f"http://127.0.0.1:{odoo_port}", f"http://127.0.0.1:{ingress_port}",
                                        (var / "ingress-odoo-token").read_text().strip(), codes)
            console.print(f"{count} Odoo automation rules registered: changes to pickings, purchase orders, quants "
                          f"and reordering rules of {len(codes)} sites post to the ingress", markup=False)
        if "scans" not in skip:
            _first_scans(codes, env, edi="edi" not in skip)
            if "carrier" not in skip:
                from siteops.sim.carrier.run import first_labels

                first_labels(codes)  # labels for the demo's ready pickings, soon after the first scans
            if "ingress" not in skip:
                sup.wait(lambda: _http_ok(f"http://127.0.0.1:{ingress_port}/healthz"), 60, "the ingress")
                _sample_messages(f"http://127.0.0.1:{ingress_port}", var / "ingress-messages-token")
        _print_summary(settings.broker_url, flower_port if "flower" not in skip else None,
                       exporter_port if "exporter" not in skip else None, auth_file, var, children)
        if use_odoo_sim:
            console.print(f"Odoo simulator: http://127.0.0.1:{odoo_port} (database demo, login admin, password "
                          f"admin); ground truth in {var / 'odoo-truth.json'}", markup=False)
        if "webhook" not in skip:
            console.print(f"webhook receiver: http://127.0.0.1:{webhook_port}/ (a table of the alerts it "
                          f"received; /deliveries.json for the same as JSON)", markup=False)
        if "carrier" not in skip:
            console.print(f"carrier simulator (EasyPost API): http://127.0.0.1:{carrier_port}/v2; labels and "
                          "tracking: `siteops shipments`", markup=False)
        if "ingress" not in skip:
            console.print(f"ingress: http://127.0.0.1:{ingress_port}/ (Odoo rules post to /hooks/odoo/<SITE>/<token>, "
                          f"token in {var / 'ingress-odoo-token'}; carrier tracking to /hooks/easypost)", markup=False)
        while not sup.stopping:
            sup.supervise()
            time.sleep(0.5)
        return 0
    except Stopping:
        return 0
    except EmbeddedError as exc:
        console.print(str(exc), style="red", markup=False)
        return 1
    finally:
        sup.stop()


def _http_ok(url: str, post: bool = False) -> bool:
    try:
        if post:
            body = {"jsonrpc": "2.0", "method": "call", "params": {}}
            return httpx.post(url, json=body, timeout=2).status_code == 200
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def odoo_rules(ingress_url: str, token: str, codes: Iterable[str]) -> list[dict[str, Any]]:
    """One "Send Webhook Notification" automation rule per site and watched model: its
    filter domain keeps the site's records (by warehouse code, through the same path the
    handler checks), its fields are what the handler reads (a hint: it re-reads anyway)."""
    from siteops.rules.events import WATCHED

    registry = get_registry()
    rules = []
    for code in codes:
        site = registry.get(code)
        for model, w in WATCHED.items():
            rules.append({"model": model, "url": f"{ingress_url}/hooks/odoo/{site.code}/{token}",
                          "name": f"siteops {site.code} {model}", "trigger": "on_create_or_write",
                          "fields": list(w.fields), "domain": [[f"{w.warehouse_path}.code", "=", site.odoo_warehouse]]})
    return rules


def register_odoo_rules(odoo_url: str, ingress_url: str, token: str, codes: Iterable[str]) -> int:
    """Register the rules on the Odoo simulator (its control endpoint stands in for creating
    `base.automation` records); a rule it refuses stops the start-up, naming the rule."""
    rules = odoo_rules(ingress_url, token, codes)
    httpx.delete(f"{odoo_url}/__sim__/webhooks", timeout=10).raise_for_status()  # a restarted stack: no doubles
    for rule in rules:
        answer = httpx.post(f"{odoo_url}/__sim__/webhooks", json=rule, timeout=10)
        if answer.status_code != 200:
            raise EmbeddedError(f"the Odoo simulator refused the automation rule {rule['name']!r}: {answer.text}")
    return len(rules)


def _first_scans(codes: list[str], env: dict[str, str], *, edi: bool = True) -> None:
    """One scan of every kind for every site now, rather than at beat's next slot."""
    from siteops.rules.findings import KINDS

    os.environ.update({k: v for k, v in env.items() if k.startswith("SITEOPS_")})
    from siteops.celery_app import app

    app.loader.import_default_modules()
    for code in codes:
        for kind in KINDS:
            app.tasks[f"siteops.scan.{kind}"].delay(code)
        if edi:
            app.tasks["siteops.edi.scan_orders"].delay(code)  # confirmed orders to EDI partners go out now
    for index, code in enumerate(codes):
        # Shortages and people's drafts become approval requests soon, not at beat's next
        # slot; not at once, so that an operator's first command is not queued behind them.
        app.tasks["siteops.approvals.sync"].apply_async(args=[code], countdown=45 + 5 * index)
    console.print("first scans enqueued for every site: `siteops findings` shows what they found")


def _sample_messages(ingress_url: str, token_file: Path) -> None:
    """A few demo customer messages through the ingress, as an inbox would send them: they
    are classified, linked and routed (or held for review) by the workers. Fixed message
    ids, so a second `make run` adds nothing."""
    from siteops.triage.samples import post_samples

    try:
        answers = post_samples(ingress_url, token_file.read_text().strip(), n=12)
    except (httpx.HTTPError, OSError) as exc:  # the demo goes on without them; say why
        console.print(f"could not post the sample customer messages: {exc}", style="yellow", markup=False)
        return
    console.print(f"{len(answers)} sample customer messages posted to the ingress: `siteops triage` shows them",
                  markup=False)


def _print_summary(broker: str, flower_port: int | None, exporter_port: int | None, auth_file: Path | None,
                   var: Path, children: list[Child]) -> None:
    table = Table(title="siteops is running", show_header=False)
    table.add_column()
    table.add_column()
    table.add_row("broker", f"{broker} (private redis-server, data in {var / 'redis'})")
    table.add_row("store", get_settings().effective_database_url)
    if flower_port is not None:
        where = f"password in {auth_file}" if auth_file else "credentials from FLOWER_BASIC_AUTH"
        table.add_row("Flower", f"http://127.0.0.1:{flower_port}/  ({where})")
    if exporter_port is not None:
        table.add_row("metrics", f"http://127.0.0.1:{exporter_port}/metrics  (Flower's own: /metrics on Flower)")
    for child in children:
        pid = child.process.pid if child.process else "-"
        table.add_row(child.name, f"pid {pid}, log {child.log}")
    table.add_row("try", "siteops enqueue siteops.ops.ping --site NORTH --wait")
    console.print(table)
    console.print("Ctrl-C stops everything.")
