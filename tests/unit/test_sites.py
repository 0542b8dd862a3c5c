"""sites.toml: central policy, site overrides only where policy allows, errors that point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from siteops.config.sites import PolicyError, load_registry
from tests.conftest import ROOT

BASE = """
[policy]
site_tunable = ["transfer_aging_hours", "carrier", "schedules"]
[policy.defaults]
transfer_aging_hours = 48
approval_limit = 10000.0
carrier = "simship"
[policy.defaults.schedules]
aging_transfers = 15
"""


def write(tmp_path: Path, sites: str, base: str = BASE) -> Path:
    path = tmp_path / "sites.toml"
    path.write_text(base + sites)
    return path


def test_the_demo_network() -> None:
    reg = load_registry(ROOT / "sites.toml")
    assert reg.codes == ("CW", "NORTH", "SOUTH", "EAST", "WEB")
    for site in reg:
        assert site.queue == f"site.{site.code}" and len(site.code) <= 5
        assert site.odoo_warehouse == site.code and site.responsible
    web, north = reg.get("WEB"), reg.get("NORTH")
    assert web.params["transfer_aging_hours"] == 12  # the site's override
    assert north.params["transfer_aging_hours"] == 48  # the enterprise default
    # A partial override of a table keeps the rest of the policy's table.
    assert web.params["schedules"]["aging_transfers"] == 5
    assert web.params["schedules"]["overdue_receipts"] == reg.defaults["schedules"]["overdue_receipts"]


def test_override_applies_only_to_its_site(tmp_path: Path) -> None:
    reg = load_registry(write(tmp_path, """
[sites.A]
responsible = ["a"]
transfer_aging_hours = 24
[sites.B]
responsible = ["b"]
odoo_warehouse = "BWH"
"""))
    assert reg.get("A").params["transfer_aging_hours"] == 24
    assert reg.get("B").params["transfer_aging_hours"] == 48
    assert reg.get("A").odoo_warehouse == "A" and reg.get("B").odoo_warehouse == "BWH"


@pytest.mark.parametrize(
    ("sites", "expected"),
    [
        ('[sites.A]\nresponsible = ["a"]\napproval_limit = 1.0\n',
         "[sites.A] approval_limit: not site-tunable"),
        ('[sites.A]\nresponsible = ["a"]\ntransfer_aging_hourz = 1\n',
         "[sites.A] transfer_aging_hourz: unknown parameter"),
        ('[sites.A]\nresponsible = ["a"]\ntransfer_aging_hours = "soon"\n',
         "[sites.A] transfer_aging_hours: expected integer"),
        ('[sites.A]\nresponsible = ["a"]\nschedules = { aging_transferz = 5 }\n',
         "[sites.A] schedules.aging_transferz: unknown key"),
        ('[sites.TOOLONG]\nresponsible = ["a"]\n', "[sites.TOOLONG]: site code must be 1-5"),
        ("[sites.A]\nname = \"x\"\n", "[sites.A] responsible: at least one"),
        ('[sites.A]\nresponsible = ["a"]\n[sites.B]\nresponsible = ["b"]\nodoo_warehouse = "A"\n',
         "[sites.B] odoo_warehouse: 'A' is already used by site A"),
        ("", "no [sites.<CODE>] tables"),
    ],
)
def test_errors_name_the_file_the_site_and_the_key(tmp_path: Path, sites: str, expected: str) -> None:
    path = write(tmp_path, sites)
    with pytest.raises(PolicyError) as info:
        load_registry(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_tunable_without_default_and_bad_toml_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[policy\n")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_registry(bad)
    with pytest.raises(PolicyError, match="'nope' has no default"):
        load_registry(write(tmp_path, '[sites.A]\nresponsible=["a"]\n',
                            base=BASE.replace('"schedules"]', '"schedules", "nope"]')))


def test_cli_sites_json_lists_effective_parameters() -> None:
    out = subprocess.run([sys.executable, "-m", "siteops.cli", "sites", "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, check=True)
    data = json.loads(out.stdout)
    assert [s["code"] for s in data] == ["CW", "NORTH", "SOUTH", "EAST", "WEB"]
    by_code = {s["code"]: s for s in data}
    assert by_code["NORTH"]["queue"] == "site.NORTH"
    assert by_code["WEB"]["params"]["transfer_aging_hours"] == 12
    assert by_code["CW"]["params"]["variance_value_finance"] == 5000.0
    assert {"code", "name", "queue", "params"} <= set(by_code["EAST"])


def test_a_bad_sites_file_stops_start_up_with_the_wrong_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[sites.A]\nresponsible = ["a"]\napproval_limit = 5.0\n')
    env = {**__import__("os").environ, "SITEOPS_SITES_FILE": str(path)}
    for args in (["sites"], ["worker", "--site", "A"], ["enqueue", "siteops.ops.ping", "--site", "A"],
                 ["findings"]):
        out = subprocess.run([sys.executable, "-m", "siteops.cli", *args], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 2, args
        # Plain text, every word: Rich markup would have eaten "[sites.A]".
        assert f"{path}: [sites.A] approval_limit: not site-tunable" in out.stderr, out.stderr
        assert "Traceback" not in out.stderr


RETRY = "[policy.retry]\nmax_retries = 5\nbackoff_base_seconds = 2.0\nbackoff_cap_seconds = 300.0\n"
SITE_A = '[sites.A]\nresponsible = ["a"]\n'


@pytest.mark.parametrize(
    ("base", "sites", "expected"),
    [
        (BASE.replace("transfer_aging_hours = 48", "transfer_aging_hours = -1"), SITE_A,
         "[policy.defaults] transfer_aging_hours: must not be negative, got -1"),
        (BASE.replace("approval_limit = 10000.0", "approval_limit = nan"), SITE_A,
         "[policy.defaults] approval_limit: must be a finite number, got nan"),
        (BASE.replace("approval_limit = 10000.0", "approval_limit = inf"), SITE_A,
         "[policy.defaults] approval_limit: must be a finite number, got inf"),
        (BASE.replace("aging_transfers = 15", "aging_transfers = -15"), SITE_A,
         "[policy.defaults] schedules.aging_transfers: must not be negative"),
        # A misspelt kind would switch the real scan off everywhere, silently.
        (BASE.replace("aging_transfers = 15", "aging_transfer = 15"), SITE_A,
         "[policy.defaults] schedules.aging_transfer: unknown scan kind or job (known: aging_transfers, "),
        (BASE.replace("aging_transfers = 15", 'aging_transfers = "often"'), SITE_A,
         "[policy.defaults] schedules.aging_transfers: expected minutes between scans"),
        (BASE, SITE_A + "schedules = { aging_transfers = -5 }\n",
         "[sites.A] schedules.aging_transfers: must not be negative"),
        (BASE, SITE_A + "transfer_aging_hours = -3\n", "[sites.A] transfer_aging_hours: must not be negative"),
        (BASE, SITE_A + 'timezone = "Mars/Olympus"\n', "[sites.A] timezone: 'Mars/Olympus' is not an IANA"),
        # The retry cap must leave the visibility timeout room for a whole task run.
        (BASE + RETRY.replace("300.0", "7000.0"), SITE_A,
         "[policy.retry] backoff_cap_seconds: must be below 6300s, got 7000"),
        (BASE + RETRY.replace("300.0", "1.0"), SITE_A,
         "[policy.retry] backoff_cap_seconds: must be at least backoff_base_seconds"),
        (BASE + RETRY.replace("2.0", "0.0"), SITE_A, "[policy.retry] backoff_base_seconds: must be above 0"),
        (BASE + RETRY.replace("300.0", "inf"), SITE_A, "[policy.retry] backoff_cap_seconds: must be a finite"),
        (BASE + RETRY.replace("max_retries = 5", "max_retries = -1"), SITE_A,
         "[policy.retry] max_retries: must not be negative"),
        (BASE + RETRY.replace("max_retries = 5", "max_retries = 2.5"), SITE_A,
         "[policy.retry] max_retries: expected integer"),
        (BASE + RETRY + "max_redeliveries = 0\n", SITE_A, "[policy.retry] max_redeliveries: must be at least 1"),
    ],
)
def test_bad_values_are_refused_naming_the_table_and_the_key(tmp_path: Path, base: str, sites: str,
                                                              expected: str) -> None:
    path = write(tmp_path, sites, base=base)
    with pytest.raises(PolicyError) as info:
        load_registry(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_a_bad_retry_cap_is_refused_by_the_command_not_at_enqueue(tmp_path: Path) -> None:
    path = write(tmp_path, SITE_A, base=BASE + RETRY.replace("300.0", "7000.0"))
    env = {**__import__("os").environ, "SITEOPS_SITES_FILE": str(path)}
    out = subprocess.run([sys.executable, "-m", "siteops.cli", "sites"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    # Plain text: Rich markup would have eaten "[policy.retry]".
    assert f"{path}: [policy.retry] backoff_cap_seconds: must be below 6300s" in out.stderr
    assert "Traceback" not in out.stderr
