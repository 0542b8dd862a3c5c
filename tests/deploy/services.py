"""What each compose service runs, worked out by running its real start script.

A worker service's command is `/app/workers/start` (or `siteops worker ...`): the
script runs here with a stand-in `siteops` on PATH that prints its arguments, so the
tests see the exact `siteops worker` command line the container would exec.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.deploy.conftest import APP_DIR, REPO

FAKE_SITEOPS = '#!/bin/sh\nfor arg in "$@"; do echo "$arg"; done\n'


def run_start_script(script: Path, args: list[str], env: dict[str, str], tmp: Path) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    fake = bin_dir / "siteops"
    fake.write_text(FAKE_SITEOPS)
    fake.chmod(0o755)
    return subprocess.run(["bash", str(script), *args], env={"PATH": f"{bin_dir}:/usr/bin:/bin", **env},
                          capture_output=True, text=True, timeout=10)


def argv(service: dict[str, Any], tmp: Path) -> list[str]:
    """The command line the service ends up exec-ing."""
    command = service.get("command") or []
    command = shlex.split(command) if isinstance(command, str) else [str(c) for c in command]
    if not command or not command[0].startswith(APP_DIR + "/"):
        return command
    script = REPO / command[0][len(APP_DIR) + 1:]
    env = {k: str(v) for k, v in (service.get("environment") or {}).items() if k.startswith("SITEOPS_SITE")}
    # Never the container's path on this machine: the script creates the folder.
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp / "metrics")
    result = run_start_script(script, command[1:], env, tmp)
    assert result.returncode == 0, f"{command[0]}: {result.stderr}"
    return ["siteops", *result.stdout.splitlines()]


@dataclass(frozen=True)
class Worker:
    service: str
    sites: tuple[str, ...]
    platform: bool


def worker_of(name: str, service: dict[str, Any], tmp: Path) -> Worker | None:
    """The sites (and platform queue) a service's `siteops worker` serves; None if no worker."""
    line = argv(service, tmp / name)
    if line[:2] != ["siteops", "worker"]:
        return None
    sites = tuple(line[i + 1] for i, arg in enumerate(line) if arg == "--site")
    return Worker(name, sites, "--platform" in line)
