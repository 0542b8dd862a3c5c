"""One engine per process, disposed after fork; schema upgrades through Alembic.

SQLite is the embedded default (`var/siteops.db`). Several worker processes write to it,
so it runs in WAL mode with a busy timeout; PostgreSQL is used through
`SITEOPS_DATABASE_URL`.

Connection budget: every process (each pool process of a worker, beat, the exporter)
keeps ONE PostgreSQL connection (`SITEOPS_DB_POOL_SIZE=1`), and opens a second only while
a transaction is nested in another (`SITEOPS_DB_MAX_OVERFLOW=1`). At 50 sites with one
pool process per site worker that is about 55 connections; PostgreSQL allows 100 by
default. Behind PgBouncer (transaction pooling) set `SITEOPS_DB_POOL=null`: SQLAlchemy's
NullPool then opens a connection per transaction and closes it, and PgBouncer pools.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

_engine: Engine | None = None
_engine_url: str | None = None
_sessions: sessionmaker[Session] | None = None

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers and one writer work at once; NORMAL sync is durable across
    # process crashes (only an OS crash can lose the last transactions).
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    from siteops.config.settings import get_settings

    settings = get_settings()
    options: dict[str, Any] = {"pool_pre_ping": True}
    if settings.database_password_file and make_url(url).password is None:
        try:
            options["connect_args"] = {"password": settings.database_password_file.read_text().strip()}
        except OSError as exc:
            raise RuntimeError(f"SITEOPS_DATABASE_PASSWORD_FILE {settings.database_password_file}: cannot read it: "
                               f"{exc.strerror}") from None
    if settings.db_pool == "null":
        return create_engine(url, poolclass=NullPool, **options)
    if settings.db_pool != "queue":
        raise RuntimeError(f"SITEOPS_DB_POOL={settings.db_pool!r}: use 'queue' (the default) or 'null' (PgBouncer)")
    return create_engine(url, pool_size=max(1, settings.db_pool_size), max_overflow=max(0, settings.db_max_overflow),
                         pool_timeout=10, **options)


def database_url() -> str:
    from siteops.config.settings import get_settings

    return get_settings().effective_database_url


def get_engine() -> Engine:
    global _engine, _engine_url, _sessions
    url = database_url()
    if _engine is None or _engine_url != url:
        if _engine is not None:
            _engine.dispose()
        _engine = make_engine(url)
        _engine_url = url
        _sessions = sessionmaker(_engine, expire_on_commit=False)
    return _engine


def reset_engine() -> None:
    """Forget the engine (tests switch databases; settings may have changed)."""
    global _engine, _engine_url, _sessions
    if _engine is not None:
        _engine.dispose()
    _engine = _engine_url = _sessions = None


def dispose_after_fork() -> None:
    """Called in each forked worker child: never share the parent's connections.

    `close=False` leaves the parent's sockets alone (closing them from the child would
    break the parent); the child simply starts a fresh pool (SQLAlchemy pooling docs,
    "Using Connection Pools with Multiprocessing or os.fork()").
    """
    if _engine is not None:
        _engine.dispose(close=False)


os.register_at_fork(after_in_child=dispose_after_fork)


@contextlib.contextmanager
def session() -> Iterator[Session]:
    get_engine()
    assert _sessions is not None
    with _sessions() as s, s.begin():
        yield s


def _alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Several processes may start at once; only one upgrades at a time."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(774411)"))
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(774411)"))
                conn.commit()
        return
    db_path = engine.url.database
    lock_path = Path(f"{db_path}.migrate.lock") if db_path else None
    if lock_path is None:
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def upgrade(url: str | None = None) -> None:
    """Bring the schema to the newest migration (safe to call from many processes)."""
    from alembic import command

    url = url or database_url()
    engine = make_engine(url)
    try:
        with _migration_lock(engine):
            cfg = _alembic_config(url)
            with engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
    finally:
        engine.dispose()
