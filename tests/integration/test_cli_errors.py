"""User errors get a message, never a traceback or a silent empty answer: unknown values
are refused listing the known ones, task arguments are checked against the task, and a
broker or store that does not answer is reported in seconds, naming its (masked) URL."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tests.conftest import ROOT

pytestmark = pytest.mark.integration
SITES = "CW, NORTH, SOUTH, EAST, WEB"


def closed_port() -> int:
    """A port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cli(store_ready):
    from siteops.cli import app

    runner = CliRunner()

    def run(*args: str):
        result = runner.invoke(app, list(args))
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result

    return run


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["findings", "--site", "NOPE"], ["--site: unknown site 'NOPE'", SITES]),
        (["findings", "--kind", "nope"], ["--kind: unknown scan kind 'nope'", "aging_transfers, overdue_receipts"]),
        (["findings", "--status", "weird"], ["--status: unknown status 'weird'", "open, acknowledged, resolved"]),
        (["dlq", "list", "--site", "NOPE"], ["--site: unknown site 'NOPE'", SITES]),
        (["dlq", "replay", "--all", "--site", "NOPE"], ["--site: unknown site 'NOPE'", SITES]),
        (["scan", "nope", "--site", "NORTH"], ["KIND: unknown scan kind 'nope'", "stock_anomalies"]),
        (["scan", "aging_transfers", "--site", "NOPE"], ["--site: unknown site 'NOPE'", SITES]),
        (["enqueue", "siteops.ops.ping", "--site", "NOPE"], ["--site: unknown site 'NOPE'", SITES]),
        (["enqueue", "siteops.ops.nope"], ["unknown task 'siteops.ops.nope'", "siteops.ops.ping"]),
        (["worker", "--site", "NOPE"], ["--site: unknown site 'NOPE'", SITES]),
        # Unexpected task arguments name the task's parameters.
        (["enqueue", "siteops.ops.ping", "--site", "NORTH", "--arg", "foo=1"],
         ["siteops.ops.ping: got an unexpected keyword argument 'foo'", "its parameters: site (from --site)"]),
        (["enqueue", "siteops.testing.flaky", "--site", "NORTH", "--arg", "key=k"],
         ["missing a required argument: 'fail_times'", "key, fail_times, rate_limited=False"]),
    ],
)
def test_bad_values_are_refused_listing_the_known_ones(cli, args, words) -> None:
    result = cli(*args)
    assert result.exit_code == 2, result.output
    for word in words:
        assert word in result.stderr
    assert "Traceback" not in result.output


def test_site_codes_match_case_insensitively(cli) -> None:
    result = cli("findings", "--site", "north", "--status", "OPEN", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [] or all(f["site"] == "NORTH" for f in json.loads(result.stdout))
    assert cli("dlq", "list", "--site", "sOuTh", "--json").exit_code == 0


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # The timeout is the correctness bound (a hang is the bug); the command itself gives
    # up after about 2 s, the rest is interpreter and Celery start-up on a busy machine.
    return subprocess.run([sys.executable, "-m", "siteops.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=20, env={**os.environ, **env})


def test_a_broker_that_does_not_answer_is_named_in_seconds() -> None:
    port = closed_port()
    out = run_cli(["enqueue", "siteops.ops.ping", "--site", "NORTH"],
                  {"SITEOPS_BROKER_URL": f"redis://:s3cret-pw@127.0.0.1:{port}/0"})
    assert out.returncode == 2
    assert f"the broker at redis://:**@127.0.0.1:{port}/0 does not answer" in out.stderr
    assert "check that Redis is running" in out.stderr
    assert "s3cret-pw" not in out.stderr + out.stdout
    assert "Traceback" not in out.stderr and len(out.stderr.splitlines()) <= 5


def test_a_store_that_does_not_answer_is_named_in_seconds() -> None:
    port = closed_port()
    out = run_cli(["findings"], {"SITEOPS_DATABASE_URL": f"postgresql+psycopg://ops:s3cret-pw@127.0.0.1:{port}/x"})
    assert out.returncode == 2
    assert f"the store at postgresql+psycopg://ops:***@127.0.0.1:{port}/x does not answer" in out.stderr
    assert "check that the database is running" in out.stderr
    assert "s3cret-pw" not in out.stderr + out.stdout
    assert "Traceback" not in out.stderr and len(out.stderr.splitlines()) <= 5
