"""The README says only what is true: its commands, options, ports, files and links.

What a reader copies from the README must work: every `siteops …` command and option it
names exists in the CLI, the `make run` table's ports are the runner's defaults, the
files it points at are the ones the stack writes, and no link leaves the repository (a
clone has no `../shared/`).
"""

from __future__ import annotations

import inspect
import re

import pytest
from typer.testing import CliRunner

from siteops.cli import app
from siteops.config.settings import EMBEDDED_REDIS_PORT
from siteops.sim.runner import run_stack
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()
runner = CliRunner()


def section(title: str) -> str:
    start = README.index(title)
    end = README.find("\n## ", start + len(title))
    return README[start:end if end > 0 else None]


def table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not set(line) <= set("|-: "):
            rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))])
    return rows


def command_words(usage: str) -> list[str]:
    """`siteops dlq replay ID` -> ["dlq", "replay"]: the words before arguments and options."""
    words = []
    for word in usage.split()[1:]:
        if not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        words.append(word)
    return words


def help_of(words: list[str]) -> str:
    result = runner.invoke(app, [*words, "--help"], env={"COLUMNS": "200", "TERM": "dumb"})
    assert result.exit_code == 0, f"siteops {' '.join(words)}: {result.output}"
    return re.sub(r"\x1b\[[0-9;]*m", "", result.output)


def readme_commands() -> list[str]:
    table = [row[0].strip("`") for row in table_rows(section("## The `siteops` command"))[1:]]
    usages = [u.strip().strip("`") for cell in table for u in cell.split(" / ")]
    blocks = re.findall(r"(?m)^\.venv/bin/(siteops [^#\n]*)", README)
    return [u.strip() for u in usages + blocks if u.strip().startswith("siteops")]


@pytest.mark.parametrize("usage", readme_commands())
def test_every_command_and_option_in_the_readme_exists(usage: str) -> None:
    words = command_words(usage)
    text = help_of(words)
    for option in re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-c)\b", usage):
        if option == "--help":
            continue
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text), f"siteops {' '.join(words)}: no {option}"


def test_the_make_run_tables_ports_are_the_runners_defaults() -> None:
    defaults = {name: p.default for name, p in inspect.signature(run_stack).parameters.items()}
    expected = {"redis-server": EMBEDDED_REDIS_PORT, "Odoo simulator": defaults["odoo_port"],
                "webhook receiver": defaults["webhook_port"], "Flower": defaults["flower_port"],
                "Prometheus exporter": defaults["exporter_port"]}
    rows = table_rows(section("**`make run`** starts"))
    for part, port in expected.items():
        [row] = [r for r in rows if part in r[0]]
        assert re.findall(r"127\.0\.0\.1:(\d+)", row[1]) == [str(port)], row


def test_the_files_the_readme_points_at_are_the_ones_the_stack_writes() -> None:
    source = "".join((ROOT / p).read_text() for p in ("siteops/sim/runner.py", "siteops/sim/carrier/run.py",
                                                      "siteops/config/settings.py", "siteops/config/edi.py"))
    rows = table_rows(section("**`make run`** starts"))
    named = {f for row in rows for f in re.findall(r"`var/([^`]+)`", row[1])}
    assert named, "the make run table names no files"
    for name in named - {"celerybeat-schedule"}:  # a false claim of its own: see below
        stem = name.rstrip("/").replace("<SITE>", "").split("/")[-1].split("-{")[0]
        assert stem.split(".")[0].rstrip("-") in source, f"var/{name}: not written by the runner"


def test_beat_state_is_not_claimed_to_be_a_file() -> None:
    """RedBeat keeps the schedule and the last-run times in Redis (schedules/beat.py)."""
    assert "celerybeat-schedule" not in section("**`make run`** starts")


def test_no_link_or_path_leaves_the_repository() -> None:
    assert not re.findall(r"\.\./[\w./-]+", README)


def test_relative_links_point_at_files_that_exist() -> None:
    for target in re.findall(r"\]\(([^)#]+)\)", README):
        if "://" not in target:
            assert (ROOT / target).exists(), f"README links to {target}, which is not in the repository"
