"""docker-compose.yml: valid for the Compose spec and for docker-compose, true to sites.toml."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from siteops.config.queues import queue_names
from siteops.config.sites import load_registry
from tests.deploy.conftest import (
    COMPOSE_FILE,
    COMPOSE_SECRETS,
    PROMETHEUS_DIR,
    REPO,
    load_yaml,
    mounts,
    require_tool,
    venv_tool,
)
from tests.deploy.services import Worker, argv, worker_of

SITE_CODES = load_registry(REPO / "sites.toml").codes
SECRET_KEY = re.compile(r"PASSWORD|SECRET|TOKEN|BASIC_AUTH|API_KEY")
INTERPOLATED = re.compile(r"\$\{[A-Z][A-Z0-9_]*:[?-][^}]*\}")


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def workers(compose: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> list[Worker]:
    tmp = tmp_path_factory.mktemp("workers")
    found = [worker_of(name, svc, tmp) for name, svc in services(compose).items()]
    return [w for w in found if w is not None]


def test_compose_spec_schema_accepts_the_file() -> None:
    result = subprocess.run([venv_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                             str(COMPOSE_FILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exe = require_tool("docker-compose", "docker-compose")
    return subprocess.run([exe, "-f", str(COMPOSE_FILE), "config", "-q"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)


def test_docker_compose_accepts_the_file() -> None:
    """Also the semantics the schema leaves out: undefined services, interpolation, merges."""
    result = compose_config(dict(os.environ))
    assert result.returncode == 0, result.stdout + result.stderr


def test_secrets_are_files_never_committed(compose: dict[str, Any]) -> None:
    declared = compose.get("secrets") or {}
    assert sorted(declared) == sorted(COMPOSE_SECRETS)
    for name, spec in declared.items():
        assert spec == {"file": f"./secrets/{name}"}, name
    ignored = subprocess.run(["git", "check-ignore", "-q", "secrets/postgres_password"], cwd=REPO)
    assert ignored.returncode == 0, "secrets/ must be in .gitignore"
    assert "secrets" in (REPO / ".dockerignore").read_text().split(), "secrets/ must stay out of the image"
    # The top of the file says how to create every one of them.
    header = COMPOSE_FILE.read_text().split("\nx-siteops-env")[0]
    assert all(f"secrets/{name}" in header for name in COMPOSE_SECRETS)


def test_secrets_reach_services_only_as_files(compose: dict[str, Any]) -> None:
    """No password, key or token in an environment value or a URL: a *_FILE names a mounted secret."""
    for name, svc in services(compose).items():
        mounted = set(svc.get("secrets") or [])
        for key, value in (svc.get("environment") or {}).items():
            value = str(value)
            if SECRET_KEY.search(key):
                assert key.endswith(("_FILE", "__FILE")), f"{name}: {key} carries a secret itself; use {key}_FILE"
                secret = value.removeprefix("/run/secrets/")
                assert value.startswith("/run/secrets/") and secret in mounted, f"{name}: {key}={value} is not mounted"
            assert not re.search(r"://[^/:@]+:[^@]+@", value), f"{name}: {key} has a password in a URL"
    assert not INTERPOLATED.search(COMPOSE_FILE.read_text().replace("${SITEOPS_", "")
                                   .replace("${GRAFANA_ADMIN_USER", "")), "a secret from the environment"


def test_every_siteops_process_gets_what_it_needs_to_reach_odoo_the_store_and_the_webhook(
        compose: dict[str, Any]) -> None:
    """Without the Odoo database, login and password every scan would be dead-lettered."""
    needs = {"SITEOPS_BROKER_URL", "SITEOPS_DATABASE_URL", "SITEOPS_DATABASE_PASSWORD_FILE", "SITEOPS_ODOO_URL",
             "SITEOPS_ODOO_DB", "SITEOPS_ODOO_LOGIN", "SITEOPS_ODOO_PASSWORD_FILE", "SITEOPS_WEBHOOK_URL",
             "SITEOPS_WEBHOOK_SECRET_FILE"}
    for name, svc in services(compose).items():
        line = " ".join(str(c) for c in svc.get("command") or [])
        if "workers/start" in line or "beat/start" in line or "exporter" in line or "db upgrade" in line:
            env = svc["environment"]
            assert needs <= set(env), f"{name} lacks {sorted(needs - set(env))}"
            assert {"postgres_password", "odoo_password", "webhook_secret"} <= set(svc["secrets"]), name


def test_siteops_services_share_one_image_and_the_platform_endpoints(compose: dict[str, Any]) -> None:
    built = {name: svc for name, svc in services(compose).items() if "build" in svc}
    assert {svc["build"] for svc in built.values()} == {"."}
    assert len({svc["image"] for svc in built.values()}) == 1
    for name, svc in built.items():
        env = svc["environment"]
        assert env["SITEOPS_BROKER_URL"] == "redis://redis:6379/0", name
        if name == "flower":
            continue
        assert env["SITEOPS_DATABASE_URL"] == "postgresql+psycopg://siteops@postgres:5432/siteops", name
        assert env["SITEOPS_ODOO_URL"] == "${SITEOPS_ODOO_URL:-http://odoo:8069}", name
    sim = built["odoo"]["command"]
    assert sim == ["python", "-m", "siteops.sim.odoo", "--host", "0.0.0.0", "--port", "8069"]
    assert services(compose)["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"


def test_every_site_has_exactly_one_worker_serving_only_that_site(workers: list[Worker]) -> None:
    for code in SITE_CODES:
        mine = [w for w in workers if code in w.sites]
        assert len(mine) == 1, f"site {code}: worker services {[w.service for w in mine]}"
        assert mine[0].sites == (code,) and not mine[0].platform, f"{mine[0]} serves more than {code}"
    unknown = {s for w in workers for s in w.sites} - set(SITE_CODES)
    assert not unknown, f"workers for sites not in sites.toml: {unknown}"


def test_worker_queues_match_the_registry(workers: list[Worker]) -> None:
    """Every queue of sites.toml is consumed, the platform queue by exactly one worker."""
    served = [q for w in workers for q in ([f"site.{s}" for s in w.sites] + (["platform"] if w.platform else []))]
    assert sorted(served) == sorted(queue_names(SITE_CODES))


def test_worker_start_script_creates_the_metrics_folder(compose: dict[str, Any], tmp_path: Path) -> None:
    argv(services(compose)["worker-cw"], tmp_path)
    assert (tmp_path / "metrics").is_dir()


def test_exactly_one_beat(compose: dict[str, Any], tmp_path: Path) -> None:
    lines = [argv(svc, tmp_path / name) for name, svc in services(compose).items()]
    assert [line for line in lines if line[:2] == ["siteops", "beat"]] == [["siteops", "beat"]]


def test_depends_on_names_defined_services_that_report_health(compose: dict[str, Any]) -> None:
    defined = services(compose)
    for name, svc in defined.items():
        deps = svc.get("depends_on") or {}
        deps = {d: {"condition": "service_started"} for d in deps} if isinstance(deps, list) else deps
        for dep, spec in deps.items():
            assert dep in defined, f"{name} depends on undefined service {dep}"
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in defined[dep], f"{name} waits for {dep}, which has no healthcheck"


def test_every_service_has_a_healthcheck(compose: dict[str, Any], workers: list[Worker]) -> None:
    for name, svc in services(compose).items():
        if svc.get("restart") == "no":  # a one-shot (migrate): others wait for it to complete
            continue
        check = svc.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
    for w in workers:
        # It pings its own node, which `siteops worker` names <SITEOPS_SITE>@<hostname>.
        test = " ".join(services(compose)[w.service]["healthcheck"]["test"])
        assert "inspect ping" in test and "$${SITEOPS_SITE}@$${HOSTNAME}" in test, w.service


def test_python_healthchecks_compile_and_import_what_exists(compose: dict[str, Any]) -> None:
    """A typo in a one-liner would leave its service unhealthy forever, and its dependants waiting."""
    for name, svc in services(compose).items():
        test = (svc.get("healthcheck") or {}).get("test") or []
        if test[:3] == ["CMD", "python", "-c"]:
            compile(test[3], f"{name} healthcheck", "exec")
            for module, names in re.findall(r"from (siteops[\w.]*) import ([\w, ]+)", test[3]):
                imported = importlib.import_module(module)
                assert all(hasattr(imported, n.strip()) for n in names.split(",")), f"{name}: {module}"


def test_state_lives_in_named_volumes(compose: dict[str, Any]) -> None:
    svc = services(compose)
    dockerfile = (REPO / "Dockerfile").read_text()
    var_dir = re.search(r"SITEOPS_VAR_DIR=(\S+)", dockerfile)
    assert var_dir, "the Dockerfile sets SITEOPS_VAR_DIR"
    for service, target in {"redis": "/data", "postgres": "/var/lib/postgresql/data",
                            "grafana": "/var/lib/grafana", "beat": var_dir.group(1)}.items():
        source = mounts(svc[service]).get(target)
        assert source and not source.startswith((".", "/")), f"{service}: {target} is not a named volume"
    declared = set(compose.get("volumes") or {})
    for name, s in svc.items():
        for source in mounts(s).values():
            if source.startswith((".", "/")):
                assert (REPO / source).exists(), f"{name}: bind mount {source} does not exist"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"


def test_prometheus_targets_are_compose_services_on_their_ports(compose: dict[str, Any]) -> None:
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    targets = [t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    for target in targets:
        host, port = target.split(":")
        if host == "localhost":
            continue
        command = [str(c) for c in services(compose)[host]["command"]]
        assert command[command.index("--port") + 1] == port, target
        assert command[command.index("--address") + 1] == "0.0.0.0", f"{host} must listen beyond loopback"
    assert mounts(services(compose)["prometheus"])["/etc/prometheus"] == "./deploy/prometheus"


def test_flower_takes_basic_auth_from_a_secret_file(compose: dict[str, Any]) -> None:
    flower = services(compose)["flower"]
    assert flower["environment"]["FLOWER_BASIC_AUTH_FILE"] == "/run/secrets/flower_basic_auth"
    assert all(p.startswith("127.0.0.1:") for p in flower.get("ports", [])), "publish Flower on loopback only"
