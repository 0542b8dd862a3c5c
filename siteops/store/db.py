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
Migrations run only on purpose: `siteops db upgrade` (and `make run`, for its own
embedded store) calls `upgrade()`. Workers, beat and the other commands call
`check_schema()` at start, which refuses a store older or newer than the code.
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

from siteops.config.secrets import read_secret_file

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
        # SecretError is a RuntimeError naming the variable and the file.
        password = read_secret_file("SITEOPS_DATABASE_PASSWORD_FILE", settings.database_password_file)
        options["connect_args"] = {"password": password}
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


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Bring the schema to the newest migration (safe to call from many processes)."""
    from alembic import command

    url = url or database_url()
    engine = make_engine(url)
    try:
        with _migration_lock(engine):
            cfg = _alembic_config(url)
            with engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
    finally:
        engine.dispose()


# --- the schema-version check ----------------------------------------------------------

#: A store that does not answer within this many seconds is reported as down (a command
#: must not hang for a TCP timeout; libpq applies it per address tried).
CONNECT_TIMEOUT = 2


class StoreError(RuntimeError):
    """The store cannot be used by this code; the message says why and what to do."""


class StoreUnavailable(StoreError):
    pass


class SchemaMismatch(StoreError):
    def __init__(self, message: str, current: tuple[str, ...], expected: tuple[str, ...], newer: bool) -> None:
        super().__init__(message)
        self.current = current
        self.expected = expected
        #: The store is at a revision this code does not know: `db upgrade` cannot help.
        self.newer = newer


def masked(url: str) -> str:
    """The URL with its password replaced by ***, for messages and logs."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can parse: show only what follows the '@'
        return url.rpartition("@")[2]


def expected_revisions() -> tuple[str, ...]:
    """The heads of the migration scripts shipped with this code (not a constant: the
    scripts are the truth, whatever migrations were added)."""
    from alembic.script import ScriptDirectory

    return tuple(sorted(ScriptDirectory(str(MIGRATIONS)).get_heads()))


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {rev.revision for rev in ScriptDirectory(str(MIGRATIONS)).walk_revisions()}


def current_revisions(url: str | None = None) -> tuple[str, ...]:
    """The revisions the store is stamped with (empty: no schema yet)."""
    from alembic.runtime.migration import MigrationContext

    url = url or database_url()
    where = masked(url)
    if url.startswith("sqlite"):
        from sqlalchemy.engine import make_url

        db = make_url(url).database
        if db and db != ":memory:" and not Path(db).exists():
            # Connecting would create an empty file; say what is missing instead.
            return ()
        engine = create_engine(url, connect_args={"timeout": CONNECT_TIMEOUT})
    else:
        engine = create_engine(url, connect_args={"connect_timeout": CONNECT_TIMEOUT}, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return tuple(sorted(MigrationContext.configure(conn).get_current_heads()))
    except Exception as exc:  # any driver's connection error: name the store, not a traceback
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise StoreUnavailable(
            f"the store at {where} does not answer ({reason[0] if reason else type(exc).__name__}); "
            "check that the database is running and reachable, and SITEOPS_DATABASE_URL"
        ) from None
    finally:
        engine.dispose()


def check_schema(url: str | None = None) -> tuple[str, ...]:
    """Refuse a store whose schema is not the one this code was written for.

    Never migrates: a worker or a read-only command that migrated a production store as
    a side effect of starting would change it under the other processes' feet, or move
    it past the code that still runs elsewhere.
    """
    url = url or database_url()
    expected = expected_revisions()
    current = current_revisions(url)
    if set(current) == set(expected):
        return current
    where = masked(url)
    want = ", ".join(expected)
    newer = bool(set(current) - _known_revisions())
    if not current:
        message = (f"the store at {where} has no schema (expected revision {want}): "
                   "run `siteops db upgrade`")
    elif newer:
        message = (f"the store at {where} is at revision {', '.join(current)}, which this code does not know "
                   f"(it expects {want}): the store was migrated by newer code; run the matching version of "
                   "siteops, or deploy it here and run `siteops db upgrade`")
    else:
        message = (f"the store at {where} is at revision {', '.join(current)}, older than this code "
                   f"(it expects {want}): run `siteops db upgrade`")
    raise SchemaMismatch(message, current, expected, newer)
