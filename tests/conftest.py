"""Test harness: a private redis-server, real `siteops worker` processes, SQLite and PostgreSQL.

The environment is set here, before any siteops module is imported, so that the test
process and every worker it starts agree on the broker, the store and the sites file.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
TMP = Path(tempfile.mkdtemp(prefix="siteops-test-"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _test_sites_file() -> Path:
    """The demo network of sites.toml, with retry timings short enough for tests."""
    text = (ROOT / "sites.toml").read_text()
    for key, value in {"max_retries": "3", "backoff_base_seconds": "0.4", "backoff_cap_seconds": "3.0",
                       "max_redeliveries": "3"}.items():
        text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
        assert n == 1, f"sites.toml no longer has [policy.retry] {key}"
    path = TMP / "sites.toml"
    path.write_text(text)
    return path


REDIS_PORT = _free_port()
BROKER_URL = f"redis://127.0.0.1:{REDIS_PORT}/0"
SQLITE_URL = f"sqlite:///{TMP / 'siteops.db'}"
os.environ.update(
    SITEOPS_VAR_DIR=str(TMP / "var"),
    SITEOPS_BROKER_URL=BROKER_URL,
    SITEOPS_DATABASE_URL=SQLITE_URL,
    SITEOPS_SITES_FILE=str(_test_sites_file()),
    SITEOPS_TASK_MODULES="tests.integration.fixture_tasks,tests.integration.fixture_base_tasks",
    PROMETHEUS_MULTIPROC_DIR=str(TMP / "prometheus"),
)
(TMP / "prometheus").mkdir()
PG_URL = os.environ.get("SITEOPS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def poll(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Wait for `predicate` to return something truthy, or fail naming what we waited for."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def run_siteops(*args: str, timeout: float = 120, env: dict[str, str] | None = None,
                code: int | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m siteops.cli ARGS` as a user runs it. A command that outlives `timeout` fails
    the test with what it had printed (a bare TimeoutExpired shows nothing of where it hung);
    with `code`, any other exit status fails it with the output too."""
    proc = subprocess.Popen([sys.executable, "-m", "siteops.cli", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        raise AssertionError(f"siteops {' '.join(args)} still running after {timeout}s;\n"
                             f"stdout: {stdout[-2000:]}\nstderr: {stderr[-4000:]}") from None
    out = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    if code is not None:
        assert out.returncode == code, f"siteops {' '.join(args)} exited {out.returncode}:\n{stdout}{stderr}"
    return out


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set these environment variables for the block (the workers started in it inherit
    them) and put the old values back after."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def odoo_simulator(seed: int, scale: float = 1, truth: str | None = None, **env: str) -> Iterator[Any]:
    """A simulated Odoo with the demo network, and SITEOPS_ODOO_* pointing at it (plus `env`)."""
    from siteops.config.sites import get_registry
    from siteops.connectors.odoo import reset_client
    from siteops.sim.odoo import start

    sim = start(port=_free_port(), seed=seed, scale=scale, sites=get_registry(),
                truth_path=TMP / truth if truth else None)
    try:
        with environment(SITEOPS_ODOO_URL=sim.url, SITEOPS_ODOO_DB="demo", SITEOPS_ODOO_LOGIN="admin",
                         SITEOPS_ODOO_PASSWORD="admin", **env):
            reset_client()
            yield sim
    finally:
        sim.stop()
        reset_client()


@contextlib.contextmanager
def webhook_receiver(secret: str) -> Iterator[Any]:
    """The demo webhook receiver, and SITEOPS_WEBHOOK_* pointing at it."""
    from siteops.sim.webhook import Receiver, serve

    receiver = Receiver(secret=secret)
    server = serve(receiver)
    try:
        with environment(SITEOPS_WEBHOOK_URL=f"http://127.0.0.1:{server.server_address[1]}/n8n",
                         SITEOPS_WEBHOOK_SECRET=secret):
            yield receiver
    finally:
        server.shutdown()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Any]:
    from siteops.sim.embedded import RedisServer

    server = RedisServer(port=REDIS_PORT, data_dir=TMP / "redis").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def remote(redis_server: Any) -> Any:
    """The 'external system' of the fixture tasks (a separate Redis database)."""
    from tests.integration.fixture_tasks import remote as make

    return make()


@pytest.fixture(scope="session")
def store_ready() -> None:
    from siteops.store import upgrade

    upgrade()


@dataclass
class WorkerProcess:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    nodename: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def children(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill_whole(self) -> None:
        """SIGKILL the parent and its pool children at once (the OOM killer, a lost host)."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Stack:
    """Starts real `siteops worker` / `siteops beat` processes and stops them all at the end."""

    def __init__(self, redis_client: Any) -> None:
        self.redis = redis_client
        self.procs: list[WorkerProcess] = []

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> WorkerProcess:
        log = TMP / "logs" / f"{name}-{uuid.uuid4().hex[:6]}.log"
        log.parent.mkdir(exist_ok=True)
        with open(log, "wb") as fh:
            proc = subprocess.Popen([sys.executable, "-m", "siteops.cli", *args], cwd=ROOT, stdout=fh,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env={**os.environ, **(env or {})}, start_new_session=True)
        wp = WorkerProcess(name, proc, log)
        self.procs.append(wp)
        return wp

    def worker(self, *sites: str, platform: bool = False, concurrency: int = 1, wait: bool = True,
               env: dict[str, str] | None = None) -> WorkerProcess:
        args = ["worker", "-c", str(concurrency), "-l", "INFO"]
        for site in sites:
            args += ["--site", site]
        if platform:
            args.append("--platform")
        name = "+".join([*sites, *(["platform"] if platform else [])])
        wp = self._spawn(name, args, env)
        wp.nodename = f"{name}@{socket.gethostname()}"
        if wait:
            self.wait_ready(wp)
        return wp

    def serving(self, site: str, concurrency: int = 1) -> WorkerProcess:
        """This module's worker for `site`: the one already running, or a new one."""
        for wp in self.procs:
            if wp.name == site and wp.process.poll() is None:
                return wp
        return self.worker(site, concurrency=concurrency)

    def wait_ready(self, wp: WorkerProcess, timeout: float = 60) -> None:
        def ready() -> bool:
            if wp.process.poll() is not None:
                raise AssertionError(f"worker {wp.name} exited:\n{wp.log_text()[-3000:]}")
            # The heartbeat starts when the worker is ready to consume.
            return any(self.redis.scan_iter(match=f"siteops:worker:{wp.nodename}:{wp.process.pid}-*"))

        poll(ready, timeout, f"worker {wp.name} to be ready", interval=0.1)

    def beat(self, env: dict[str, str] | None = None) -> WorkerProcess:
        wp = self._spawn("beat", ["beat", "-l", "INFO"], env)
        return wp

    def stop(self) -> None:
        for wp in self.procs:
            if wp.process.poll() is None:
                os.killpg(wp.process.pid, signal.SIGTERM)
        for wp in self.procs:
            wp.stop()
        self.procs.clear()


@pytest.fixture(scope="module")
def stack(redis_server: Any, store_ready: None) -> Iterator[Stack]:
    """The module's worker processes, on a store of the module's own: what one module leaves
    behind (parked waits, alerts owed, open findings, leases) is never acted on by the
    workers of the next, which would otherwise run it against other simulators."""
    import redis

    with use_store(f"sqlite:///{TMP / f'module-{uuid.uuid4().hex[:8]}.db'}"):
        s = Stack(redis.Redis(port=REDIS_PORT))
        yield s
        s.stop()
        # The next module on this test process starts on an empty broker too: no message,
        # circuit breaker, beat lock or recovery state of this one is left for its workers.
        s.redis.flushdb()


# --- databases: the store tests run on SQLite and, when reachable, on PostgreSQL -----


def _postgres_reachable() -> bool:
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 2})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def postgres_database(prefix: str = "siteops_test") -> Iterator[tuple[str, Any]]:
    """A new, empty PostgreSQL database for one test or module, dropped afterwards; yields its
    URL and an AUTOCOMMIT admin engine. Skips when PostgreSQL is unreachable, but fails under
    CI=true: there the PostgreSQL variants must run."""
    import sqlalchemy as sa

    if not _postgres_reachable():
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL not reachable at {PG_URL} (CI=true: the PostgreSQL variants must run)")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}", admin
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, migrated database; the store module is pointed at it for the test."""
    if request.param == "sqlite":
        with use_store(f"sqlite:///{TMP / f'store-{uuid.uuid4().hex[:8]}.db'}") as url:
            yield url
        return
    with postgres_database() as (pg_url, _), use_store(pg_url) as url:
        yield url


@contextlib.contextmanager
def use_store(url: str) -> Iterator[str]:
    """Point this process's store at `url` (migrated) for the duration of the block."""
    from siteops.config.settings import get_settings
    from siteops.store import reset_engine, upgrade

    previous = os.environ["SITEOPS_DATABASE_URL"]
    os.environ["SITEOPS_DATABASE_URL"] = url
    get_settings.cache_clear()
    reset_engine()
    try:
        upgrade()
        yield url
    finally:
        reset_engine()
        os.environ["SITEOPS_DATABASE_URL"] = previous
        get_settings.cache_clear()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if exitstatus == 0:
        shutil.rmtree(TMP, ignore_errors=True)
    else:
        print(f"\nsiteops test state kept in {TMP}")


# The files that take a minute or more, longest first. xdist's `--dist loadfile` hands files
# out in collection order (pyproject turns off its reordering by test count, which would
# put these one-test files last): a two-minute file handed out at the end makes the whole
# suite two minutes longer, handed out first it runs beside everything else.
RUN_FIRST = (
    # Two whole stacks at once starve each other's start on two cores: the make run e2e and
    # the chaos test start beside two tests that mostly wait (a SIGSTOP, a lock expiring).
    "tests/e2e/test_make_run.py",
    "tests/integration/test_shipping_chaos.py",
    "tests/integration/test_stalled_worker.py",
    "tests/integration/test_beat_ha.py",
    "tests/integration/test_scans.py",
    "tests/integration/test_retries_dlq.py",
    "tests/integration/test_crash_recovery.py",
    "tests/deploy/test_compose_up.py",
    "tests/e2e/test_run_stops.py",
    "tests/integration/test_reconcile.py",
    "tests/integration/test_base_guarantees.py",
    "tests/integration/test_schema_version.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if missing := [path for path in RUN_FIRST if not (ROOT / path).is_file()]:
        raise pytest.UsageError(f"tests/conftest.py RUN_FIRST names files that do not exist: {missing}")
    rank = {path: i for i, path in enumerate(RUN_FIRST)}

    def key(item: pytest.Item) -> int:
        return rank.get(Path(str(item.path)).relative_to(ROOT).as_posix(), len(RUN_FIRST))

    items.sort(key=key)  # stable: the rest keep their order
