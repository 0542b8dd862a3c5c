"""Each service of docker-compose.yml comes up: its own command line, run outside Docker.

There is no Docker engine here, so the test does what the containers would do with the
command, environment and secrets compose gives them, against embedded parts in place of
the other containers: a private redis-server for `redis`, SQLite for `postgres`, the Odoo
simulator started from the `odoo` service's own command. Container paths become
temporary folders and the ports become free ones; nothing else changes. Each service must
then pass its own compose healthcheck within a deadline, and a scan run by the `worker-cw`
service must complete against the simulator: it needs the Odoo database, login and
password file that compose passes.
"""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from siteops.sim.embedded import RedisServer, free_port
from tests.conftest import WorkerProcess, poll
from tests.deploy.conftest import APP_DIR, COMPOSE_SECRETS, REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BIN = Path(sys.executable).parent
STARTED = ("odoo", "worker-cw", "worker-platform", "beat", "flower", "exporter")
VARIABLE = re.compile(r"\$\{([A-Z][A-Z0-9_]*)(?::?-([^}]*))?\}")


class Local:
    """Translates a compose service into a process on this machine."""

    def __init__(self, tmp: Path, redis_port: int) -> None:
        self.tmp = tmp
        self.redis_port = redis_port
        self.ports = {"8069": str(free_port()), "5555": str(free_port()), "9808": str(free_port())}
        self.db = tmp / "store.db"
        secrets = tmp / "secrets"
        secrets.mkdir()
        for name in COMPOSE_SECRETS:
            value = {"odoo_password": "admin", "flower_basic_auth": "ops:not-a-real-one"}.get(name, "local-" + name)
            (secrets / name).write_text(value + "\n")

    def text(self, value: str, service: str) -> str:
        # compose interpolates ${VAR:-default}; "$$" is a literal "$" left for the shell.
        value = VARIABLE.sub(lambda m: os.environ.get(m.group(1), m.group(2) or ""), value.replace("$$", "\0"))
        value = value.replace("\0", "$")
        value = value.replace("redis://redis:6379", f"redis://127.0.0.1:{self.redis_port}")
        value = value.replace("http://odoo:8069", f"http://127.0.0.1:{self.ports['8069']}")
        value = value.replace("/run/secrets/", f"{self.tmp}/secrets/")
        value = value.replace("/var/lib/siteops/metrics", f"{self.tmp}/metrics")
        value = value.replace("/var/lib/siteops", f"{self.tmp}/var-{service}")
        for port, free in self.ports.items():
            value = re.sub(rf"(?<![\d.]){port}(?!\d)", free, value)
        return value

    def env(self, name: str, svc: dict[str, Any]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SITEOPS_", "PROMETHEUS_", "FLOWER_"))}
        dockerfile = (REPO / "Dockerfile").read_text()
        for key, value in re.findall(r"(SITEOPS_[A-Z_]+)=(\S+)", dockerfile):
            env[key] = value.replace("/app/", f"{REPO}/")
        env.update({k: self.text(str(v), name) for k, v in (svc.get("environment") or {}).items()})
        env["SITEOPS_VAR_DIR"] = self.text(env["SITEOPS_VAR_DIR"], name)
        if "SITEOPS_DATABASE_URL" in env:  # SQLite stands in for the postgres service
            env["SITEOPS_DATABASE_URL"] = f"sqlite:///{self.db}"
        env.update(PATH=f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}", HOSTNAME=socket.gethostname(),
                   PYTHONUNBUFFERED="1")
        return env

    def argv(self, name: str, words: list[Any]) -> list[str]:
        out = [self.text(str(w), name) for w in words]
        out = [REPO.as_posix() + w[len(APP_DIR):] if w.startswith(APP_DIR + "/") else w for w in out]
        return ["127.0.0.1" if w == "0.0.0.0" else w for w in out]

    def healthcheck(self, name: str, svc: dict[str, Any]) -> list[str]:
        test = [str(t) for t in svc["healthcheck"]["test"]]
        if test[0] == "CMD-SHELL":
            return ["sh", "-c", self.text(test[1], name)]
        assert test[0] == "CMD", f"{name}: healthcheck {test}"
        return self.argv(name, test[1:])


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Local]:
    server = RedisServer(port=free_port(), data_dir=tmp_path / "redis").start()
    try:
        yield Local(tmp_path, server.port)
    finally:
        server.stop()


def healthy(local: Local, name: str, svc: dict[str, Any], env: dict[str, str], proc: WorkerProcess) -> bool:
    if not proc.alive():
        raise AssertionError(f"{name} exited with {proc.process.returncode}:\n{proc.log_text()[-3000:]}")
    check = subprocess.run(local.healthcheck(name, svc), env=env, cwd=REPO, capture_output=True, timeout=30)
    return check.returncode == 0


def test_every_service_command_comes_up_and_a_scan_completes(compose: dict[str, Any], local: Local,
                                                            tmp_path: Path) -> None:
    services = compose["services"]
    # The one-shot migration first, as compose orders it (service_completed_successfully).
    migrate = services["migrate"]
    result = subprocess.run(local.argv("migrate", migrate["command"]), env=local.env("migrate", migrate), cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    procs: dict[str, WorkerProcess] = {}
    envs: dict[str, dict[str, str]] = {}
    try:
        for name in STARTED:
            svc = services[name]
            envs[name] = local.env(name, svc)
            log = tmp_path / f"{name}.log"
            with open(log, "wb") as out:
                process = subprocess.Popen(local.argv(name, svc["command"]), env=envs[name], cwd=tmp_path,
                                           stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                           start_new_session=True)
            procs[name] = WorkerProcess(name, process, log)
            if name == "odoo":  # the workers' first scan needs it; nothing else does
                poll(lambda: healthy(local, "odoo", services["odoo"], envs["odoo"], procs["odoo"]), 90,
                     "the odoo service", interval=0.5)
        for name in STARTED:
            poll(lambda n=name: healthy(local, n, services[n], envs[n], procs[n]), 120,  # type: ignore[misc]
                 f"the {name} service's healthcheck", interval=1)

        # worker-cw reads Odoo with the database, login and password file compose gives it.
        scan = subprocess.run(["siteops", "scan", "aging_transfers", "--site", "CW", "--wait", "--timeout", "90"],
                              env=envs["worker-cw"], cwd=REPO, capture_output=True, text=True, timeout=150)
        assert scan.returncode == 0, scan.stdout + scan.stderr
        with sqlite3.connect(local.db) as db:
            runs = db.execute("select site, kind, status, records_read from scan_runs").fetchall()
        # Beat, started too, may have run CW's scans of its own (a new schedule is due at
        # once): every scan run complete, and the one asked for among them.
        assert runs and all(status == "complete" and site == "CW" for site, _, status, _ in runs), runs
        assert any(kind == "aging_transfers" and read > 0 for _, kind, _, read in runs), runs
    finally:
        for proc in procs.values():
            proc.stop()
    assert not [n for n, p in procs.items() if p.alive()]
