"""Migrations only on purpose: workers, beat and commands refuse a store older or newer
than their code, naming both revisions; only `siteops db upgrade` migrates."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from tests.conftest import ROOT, TMP, postgres_database

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def blank_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty database (no schema at all)."""
    if request.param == "sqlite":
        yield f"sqlite:///{TMP / f'blank-{uuid.uuid4().hex[:8]}.db'}"
        return
    with postgres_database("siteops_schema") as (url, _):
        yield url


@contextlib.contextmanager
def pointed_at(url: str) -> Iterator[Callable[..., object]]:
    """Run CLI commands in this process against `url` (without migrating it)."""
    from siteops.cli import app
    from siteops.config.settings import get_settings
    from siteops.store import reset_engine

    previous = os.environ["SITEOPS_DATABASE_URL"]
    os.environ["SITEOPS_DATABASE_URL"] = url
    get_settings.cache_clear()
    reset_engine()
    runner = CliRunner()
    try:
        yield lambda *args: runner.invoke(app, list(args))
    finally:
        reset_engine()
        os.environ["SITEOPS_DATABASE_URL"] = previous
        get_settings.cache_clear()


def start(args: list[str], url: str) -> subprocess.CompletedProcess[str]:
    """A real `siteops worker`/`beat` start: it must refuse before Celery starts."""
    return subprocess.run([sys.executable, "-m", "siteops.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "SITEOPS_DATABASE_URL": url})


def test_an_older_store_is_refused_until_db_upgrade(blank_url: str) -> None:
    from siteops.store.db import current_revisions, expected_revisions, upgrade

    upgrade(blank_url, "0001")
    expected = ", ".join(expected_revisions())
    message = f"is at revision 0001, older than this code (it expects {expected}): run `siteops db upgrade`"

    worker = start(["worker", "--site", "NORTH"], blank_url)
    assert worker.returncode == 2 and message in worker.stderr, worker.stderr
    assert "celery@" not in worker.stdout + worker.stderr  # Celery never started
    with pointed_at(blank_url) as cli:
        for args in (["findings"], ["dlq", "list"], ["report", "sites"]):
            result = cli(*args)
            assert result.exit_code == 2 and message in result.stderr, (args, result.stderr)
        # Read-only commands and a worker's start never migrate.
        assert current_revisions(blank_url) == ("0001",)

        upgraded = cli("db", "upgrade")
        assert upgraded.exit_code == 0, upgraded.stderr
        assert f"store up to date at revision {expected}" in upgraded.stdout
        assert cli("findings", "--json").exit_code == 0
        assert cli("db", "status").exit_code == 0
    assert set(current_revisions(blank_url)) == set(expected_revisions())


def test_a_newer_store_is_refused_and_db_upgrade_does_not_touch_it(blank_url: str) -> None:
    from siteops.store.db import current_revisions, upgrade

    upgrade(blank_url)
    engine = sa.create_engine(blank_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    message = "is at revision 9999, which this code does not know"

    beat = start(["beat"], blank_url)
    assert beat.returncode == 2 and message in beat.stderr, beat.stderr
    with pointed_at(blank_url) as cli:
        for args in (["findings"], ["db", "upgrade"]):
            result = cli(*args)
            assert result.exit_code == 2 and message in result.stderr, (args, result.stderr)
            assert "the store was migrated by newer code" in result.stderr
        status = cli("db", "status")
        assert status.exit_code == 1 and "current:  9999" in status.stdout
    assert current_revisions(blank_url) == ("9999",)


def test_a_missing_store_is_not_created_by_a_read_only_command() -> None:
    path = TMP / f"missing-{uuid.uuid4().hex[:8]}.db"
    with pointed_at(f"sqlite:///{path}") as cli:
        result = cli("findings")
    assert result.exit_code == 2
    assert "has no schema" in result.stderr and "run `siteops db upgrade`" in result.stderr
    assert not path.exists()
