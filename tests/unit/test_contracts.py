"""Contracts every part keeps: names, queues, schedules, serializers, the stdlib `platform`."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def app():
    from siteops.celery_app import app

    app.loader.import_default_modules()
    return app


def test_task_names_are_explicit_and_stable(app) -> None:
    from siteops.tasks.base import TASK_NAME, siteops_task

    ours = [name for name in app.tasks if name.startswith("siteops.")]
    assert "siteops.ops.ping" in ours and "siteops.ops.recover_lost" in ours
    for name in ours:
        assert TASK_NAME.match(name), name
    with pytest.raises(ValueError, match=r"siteops\.<area>\.<verb_noun>"):
        siteops_task("ping")


def test_every_site_has_a_declared_queue_and_missing_queues_are_not_created(app) -> None:
    from siteops.config.queues import PLATFORM_QUEUE
    from siteops.config.sites import get_registry

    declared = {q.name for q in app.conf.task_queues}
    assert declared == {f"site.{c}" for c in get_registry().codes} | {PLATFORM_QUEUE}
    assert app.conf.task_create_missing_queues is False


def test_reliability_settings(app) -> None:
    from siteops.config.sites import get_registry

    conf = app.conf
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert conf.worker_prefetch_multiplier == 1
    assert conf.worker_send_task_events and conf.task_send_sent_event
    vt = conf.broker_transport_options["visibility_timeout"]
    assert vt > conf.task_time_limit + get_registry().retry.backoff_cap_seconds
    assert conf.task_soft_time_limit < conf.task_time_limit
    # Late acks only where the task keeps the idempotency contract.
    for task in (t for n, t in app.tasks.items() if n.startswith("siteops.")):
        assert task.acks_late == task.reject_on_worker_lost == task.idempotent


def test_beat_entries_name_registered_tasks_declared_queues_and_expire(app) -> None:
    declared = {q.name for q in app.conf.task_queues}
    assert app.conf.beat_schedule
    for name, entry in app.conf.beat_schedule.items():
        assert entry["task"] in app.tasks, name
        assert entry["options"]["queue"] in declared, name
        assert entry["options"]["expires"] > 0, name


def test_router_sends_site_tasks_by_first_argument(app) -> None:
    from siteops.tasks.ops import ping, recover_lost

    assert app.amqp.router.route({}, ping.name, ["EAST"], {}, ping)["queue"].name == "site.EAST"
    assert app.amqp.router.route({}, ping.name, [], {"site": "WEB"}, ping)["queue"].name == "site.WEB"
    assert app.amqp.router.route({}, recover_lost.name, [], {}, recover_lost)["queue"].name == "platform"


@given(retries=st.integers(0, 40), base=st.floats(0.01, 60), cap=st.floats(0.01, 3600), seed=st.integers())
def test_backoff_is_full_jitter_within_the_exponential_window(retries, base, cap, seed) -> None:
    from siteops.tasks.base import backoff_delay

    delay = backoff_delay(retries, base, cap, random.Random(seed))
    assert 0 <= delay <= min(cap, base * 2**retries)


def test_backoff_windows_double_and_spread() -> None:
    from siteops.tasks.base import backoff_delay

    rng = random.Random(7)
    samples = {n: [backoff_delay(n, 1.0, 1000.0, rng) for _ in range(400)] for n in range(5)}
    for n in range(4):
        # The mean of a full-jitter window is half the window: it doubles with each retry.
        ratio = (sum(samples[n + 1]) / 400) / (sum(samples[n]) / 400)
        assert 1.6 < ratio < 2.5
    assert max(samples[4]) - min(samples[4]) > 8  # spread, not a fixed delay


def test_import_platform_from_the_repository_root_is_the_standard_library() -> None:
    out = subprocess.run([sys.executable, "-c", "import platform, sysconfig; "
                          "print(platform.__file__.startswith(sysconfig.get_paths()['stdlib']), "
                          "platform.python_implementation())"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "CPython"]
    assert not (ROOT / "platform").exists() and not (ROOT / "platform.py").exists()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"A"' in pyproject  # ruff's flake8-builtins rules, A005 included
