"""The ingress served by a real uvicorn on a free port, publishing to the test Redis."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import _free_port, poll

TOKEN = "ingress-test-token-0123456789"


class Served:
    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    access_log=False, lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        poll(lambda: self.server.started, 10, "uvicorn to start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture()
def serve() -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    def start(publish: Callable[..., str] | None = None, hooks: dict[str, Any] | None = None) -> Served:
        from siteops.celery_app import app as celery
        from siteops.config.sites import get_registry
        from siteops.ingress.app import Ingress, build_app, celery_publish

        ingress = Ingress(publish=publish or celery_publish(celery), site_codes=get_registry().codes,
                          secrets={"odoo": TOKEN}, hooks=hooks or {})
        served = Served(build_app(ingress))
        started.append(served)
        return served

    yield start
    for s in started:
        s.stop()
