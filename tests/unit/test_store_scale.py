"""The store at 50 sites: freshness upserted, retention in batches, the connection budget.

On SQLite and PostgreSQL (the `store_url` fixture).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from siteops.config.sites import PolicyError, load_registry
from tests.conftest import ROOT

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def scan(site: str, kind: str, finished: dt.datetime, status: str = "complete") -> None:
    from siteops.store import findings

    findings.record_scan(task_id=None, site=site, kind=kind, status=status, records_read=1, found=0, opened=0,
                         resolved=0, escalated=0, error=None, started_at=finished - dt.timedelta(seconds=3),
                         finished_at=finished, duration_seconds=3.0)


def test_freshness_is_the_last_complete_scan_per_site_and_kind(store_url: str) -> None:
    from siteops.store import upkeep

    scan("NORTH", "aging_transfers", T0)
    scan("NORTH", "aging_transfers", T0 + dt.timedelta(minutes=15))
    scan("NORTH", "aging_transfers", T0 + dt.timedelta(minutes=30), status="failed")  # not fresh
    scan("NORTH", "aging_transfers", T0 + dt.timedelta(minutes=5))  # a late, older run: not newer
    scan("SOUTH", "stock_anomalies", T0)
    fresh = {(site, kind): when for site, kind, when in upkeep.last_success()}
    assert fresh == {("NORTH", "aging_transfers"): T0 + dt.timedelta(minutes=15), ("SOUTH", "stock_anomalies"): T0}
    with sa.create_engine(store_url).connect() as conn:
        assert conn.execute(sa.text("select count(*) from scan_freshness")).scalar() == 2


def test_retention_deletes_old_runs_in_batches_and_keeps_freshness(store_url: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from siteops.store import audit, upkeep
    from siteops.worker.retention import retention

    monkeypatch.setattr(upkeep, "BATCH", 7)  # several batches, and one that is not full
    now = T0 + dt.timedelta(days=60)
    for i in range(20):
        scan("CW", "aging_transfers", T0 + dt.timedelta(minutes=i))  # 60 days old
    scan("CW", "overdue_receipts", now - dt.timedelta(days=2))  # recent
    for i in range(17):
        audit.record_run(task_id=f"old-{i}", task_name="siteops.ops.ping", site="CW", business_key=None,
                         attempt=1, redelivered=False, worker="CW@h", pid=1, started_at=T0, state="succeeded",
                         duration=0.1)
    audit.record_run(task_id="new", task_name="siteops.ops.ping", site="CW", business_key=None, attempt=1,
                     redelivered=False, worker="CW@h", pid=1, started_at=now - dt.timedelta(hours=1),
                     state="succeeded", duration=0.1)
    assert upkeep.purge(30, now=now) == {"job_runs": 17, "scan_runs": 20}
    with sa.create_engine(store_url).connect() as conn:
        assert conn.execute(sa.text("select task_id from job_runs")).scalars().all() == ["new"]
        assert conn.execute(sa.text("select kind from scan_runs")).scalars().all() == ["overdue_receipts"]
    # The last success of a site that stopped scanning is still known after its runs went.
    assert {(s, k) for s, k, _ in upkeep.last_success()} == {("CW", "aging_transfers"), ("CW", "overdue_receipts")}
    # The housekeeping job (default 30 days) has nothing left to do: it reports 0 and acts on nothing.
    assert retention(None) == 0


def test_the_policy_sets_retention(tmp_path: Path) -> None:
    from siteops.store.upkeep import retention_days

    assert retention_days(load_registry(ROOT / "sites.toml")) == 30
    bad = tmp_path / "sites.toml"
    bad.write_text((ROOT / "sites.toml").read_text().replace("retention_days = 30", "retention_days = 0"))
    with pytest.raises(PolicyError, match=r"sites.toml: \[policy.defaults\] retention_days: .* at least 1, got 0"):
        retention_days(load_registry(bad))


def test_migration_backfills_freshness_from_existing_scan_runs(tmp_path: Path) -> None:
    from alembic import command

    from siteops.store.db import _alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = _alembic_config(url)
    command.upgrade(cfg, "0002")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for i, (status, minute) in enumerate([("complete", 1), ("complete", 9), ("failed", 20)]):
            conn.execute(sa.text(
                "insert into scan_runs (id, site, kind, status, records_read, found, opened, resolved, escalated,"
                " started_at, finished_at, duration_seconds) values (:id, 'CW', 'aging_transfers', :status,"
                " 0, 0, 0, 0, 0, :t, :t, 1.0)"), {"id": i + 1, "status": status, "t": f"2026-11-01 12:{minute:02d}:00"})
    command.upgrade(cfg, "head")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select site, kind, scan_run_id from scan_freshness")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("CW", "aging_transfers", 2)]


def test_one_connection_per_process_and_a_null_pool_for_pgbouncer(monkeypatch: pytest.MonkeyPatch) -> None:
    from siteops.config.settings import get_settings
    from siteops.store.db import make_engine

    url = "postgresql+psycopg://siteops@db.invalid:5432/siteops"
    get_settings.cache_clear()
    engine = make_engine(url)
    assert type(engine.pool).__name__ == "QueuePool"
    assert engine.pool.size() == 1 and engine.pool._max_overflow == 1  # type: ignore[attr-defined]
    monkeypatch.setenv("SITEOPS_DB_POOL", "null")
    get_settings.cache_clear()
    assert type(make_engine(url).pool).__name__ == "NullPool"
    monkeypatch.setenv("SITEOPS_DB_POOL", "bouncy")
    get_settings.cache_clear()
    with pytest.raises(RuntimeError, match="SITEOPS_DB_POOL='bouncy'"):
        make_engine(url)
    monkeypatch.delenv("SITEOPS_DB_POOL")
    get_settings.cache_clear()


def test_the_postgres_password_comes_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The URL carries no password (URLs reach logs and `ps`); the secret file does."""
    from siteops.config.settings import get_settings
    from siteops.store.db import make_engine
    from tests.conftest import PG_URL, _postgres_reachable

    if not _postgres_reachable():
        pytest.skip("PostgreSQL not reachable")
    secret = tmp_path / "pg_password"
    secret.write_text("from-the-file\n")
    monkeypatch.setenv("SITEOPS_DATABASE_PASSWORD_FILE", str(secret))
    get_settings.cache_clear()
    try:
        engine = make_engine(PG_URL)
        sent: list[object] = []
        sa.event.listen(engine, "do_connect", lambda _d, _r, _a, params: sent.append(params.get("password")))
        with engine.connect() as conn:  # the test server trusts loopback, so any password does
            assert conn.execute(sa.text("select 1")).scalar() == 1
        engine.dispose()
        assert sent == ["from-the-file"] and engine.url.password is None
        monkeypatch.setenv("SITEOPS_DATABASE_PASSWORD_FILE", str(tmp_path / "missing"))
        get_settings.cache_clear()
        with pytest.raises(RuntimeError, match=r"SITEOPS_DATABASE_PASSWORD_FILE .*missing: cannot read it"):
            make_engine(PG_URL)
    finally:
        monkeypatch.delenv("SITEOPS_DATABASE_PASSWORD_FILE")
        get_settings.cache_clear()
