"""Process settings from the environment (`SITEOPS_*` variables).

Policy (what the business decided) lives in `sites.toml`; this module holds only what the
*process* needs to run: where the broker, database and local state are. Secrets are read
here and nowhere else, and never leave the process in task arguments or logs.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The private Redis that `make run` starts listens here, so every `siteops` command in
#: another terminal finds it without configuration. 6390, not 6379: never the system's.
EMBEDDED_REDIS_PORT = 6390
REPO_ROOT = Path(__file__).resolve().parent.parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SITEOPS_", extra="ignore")

    #: Every piece of local state lives below this folder: SQLite store, beat state,
    #: Redis data of the embedded stack, Prometheus multiprocess files, logs.
    var_dir: Path = Field(default=Path("var"))
    broker_url: str = f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0"
    #: Results only matter to callers that wait (`siteops enqueue --wait`); by default
    #: they live in the broker's Redis, database 1.
    result_backend: str | None = None
    database_url: str | None = None
    #: The PostgreSQL password, read from this file (a compose/Kubernetes secret) instead
    #: of being written into SITEOPS_DATABASE_URL, where URLs end up in logs and `ps`.
    database_password_file: Path | None = None
    #: Connection budget (store/db.py): "queue" keeps `db_pool_size` (+ `db_max_overflow`
    #: in bursts) connections per process; "null" opens one per transaction and closes it,
    #: for PgBouncer in transaction mode, which does the pooling.
    db_pool: str = "queue"
    db_pool_size: int = 1
    db_max_overflow: int = 1
    sites_file: Path | None = None
    log_level: str = "INFO"
    #: Extra task modules for workers to import, comma-separated (plug-ins, test tasks).
    task_modules: str = ""

    @property
    def var(self) -> Path:
        path = self.var_dir
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var / 'siteops.db').resolve()}"

    @property
    def effective_result_backend(self) -> str | None:
        if self.result_backend:
            return self.result_backend
        url = self.broker_url
        if url.startswith(("redis://", "rediss://")):
            base, _, db = url.rpartition("/")
            if db.isdigit() and "://" in base and base.count("/") >= 2:
                return f"{base}/{int(db) + 1}"
            return url.rstrip("/") + "/1"
        return None

    @property
    def effective_sites_file(self) -> Path:
        if self.sites_file:
            return self.sites_file
        local = Path("sites.toml")
        return local if local.exists() else REPO_ROOT / "sites.toml"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
