"""Deployment definitions: paths, and the external checkers (promtool, docker-compose).

The checkers come from Debian packages that `.ci/deploy-deps` installs. Without them a
test is skipped with the reason on a developer's machine, but fails under CI (CI=true),
where a silent skip would pass a broken file.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
GRAFANA_DIR = REPO / "deploy" / "grafana"
COMPOSE_FILE = REPO / "docker-compose.yml"
# Where the Dockerfile puts the repository (WORKDIR), as compose commands name it.
APP_DIR = "/app"

# The secrets of docker-compose.yml: files below ./secrets (git-ignored), mounted at
# /run/secrets/<name> and named by the *_FILE variables of the services that read them.
COMPOSE_SECRETS = ("postgres_password", "odoo_password", "webhook_secret", "flower_basic_auth",
                   "grafana_admin_password")


def require_tool(name: str, package: str) -> str:
    """The path of an external checker, or skip (fail under CI) naming the package."""
    path = shutil.which(name)
    if path:
        return path
    reason = f"{name} not found: install the Debian package {package} (.ci/deploy-deps)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def venv_tool(name: str) -> str:
    """A console script of the test environment (e.g. check-jsonschema)."""
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is missing from the test environment: pip install -e '.[dev]'")
    return found


def load_yaml(path: Path) -> Any:
    # safe_load resolves the `<<: *anchor` merge keys, as compose does.
    return yaml.safe_load(path.read_text())


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """A compose service's mounts: target -> source (a named volume, or a ./path bind mount)."""
    return {target: source for source, target, *_ in (v.split(":") for v in service.get("volumes", []))}


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    doc = load_yaml(COMPOSE_FILE)
    assert isinstance(doc, dict) and isinstance(doc.get("services"), dict)
    return doc
