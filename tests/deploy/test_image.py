"""The image (Dockerfile, .dockerignore) and the start scripts of workers/ and beat/."""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path

import pytest

from tests.deploy.conftest import APP_DIR, REPO
from tests.deploy.services import run_start_script

STRICT = "set -o errexit -o pipefail -o nounset"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def test_image_is_python_311_slim_installing_the_project_with_pip() -> None:
    steps = instructions()
    assert [args for op, args in steps if op == "FROM"] == ["python:3.11-slim"]
    assert ("WORKDIR", APP_DIR) in steps
    copies = " ".join(args for op, args in steps if op == "COPY")
    assert "pyproject.toml" in copies
    assert any(op == "RUN" and re.search(r"pip install .*(\s\.$|\s\.\s)", args) for op, args in steps)


def test_image_runs_as_a_non_root_user() -> None:
    users = [args for op, args in instructions() if op == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}


def test_image_holds_the_start_scripts_compose_runs() -> None:
    copies = [args.split() for op, args in instructions() if op == "COPY"]
    for folder in ("workers", "beat"):
        assert [folder, f"./{folder}"] in copies or [folder, f"{APP_DIR}/{folder}"] in copies


def test_dockerignore_keeps_state_and_secrets_out_but_not_what_is_copied() -> None:
    patterns = [p.strip() for p in (REPO / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    assert {".git", ".venv", "var", ".env"} <= set(patterns)
    for op, args in instructions():
        if op == "COPY":
            for source in args.split()[:-1]:
                assert not any(fnmatch.fnmatch(source, p) for p in patterns), f"{source} is ignored"


@pytest.mark.parametrize("folder", ["workers", "beat"])
def test_start_folders_hold_one_strict_bash_start_script(folder: str) -> None:
    assert sorted(p.name for p in (REPO / folder).iterdir()) == ["start"], f"{folder}/ holds start scripts only"
    script = REPO / folder / "start"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n") and STRICT in text
    assert re.search(r"^exec siteops ", text, re.M), "exec, so the process gets the container's signals"


def test_worker_start_refuses_to_run_without_a_site(tmp_path: Path) -> None:
    result = run_start_script(REPO / "workers" / "start", [], {}, tmp_path)
    assert result.returncode != 0
    assert "SITEOPS_SITE" in result.stderr and result.stdout == ""


def test_worker_start_serves_exactly_the_given_site(tmp_path: Path) -> None:
    result = run_start_script(REPO / "workers" / "start", [], {"SITEOPS_SITE": "NORTH"}, tmp_path)
    assert result.returncode == 0, result.stderr
    line = result.stdout.split()
    assert line[:3] == ["worker", "--site", "NORTH"] and line.count("--site") == 1 and "--platform" not in line
