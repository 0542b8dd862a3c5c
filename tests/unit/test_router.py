"""Routing by task NAME: the table every producer reads agrees with the declared tasks."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def app():
    from siteops.celery_app import app

    app.loader.import_default_modules()
    return app


def test_every_registered_task_agrees_with_the_table(app) -> None:
    from siteops.config.queues import PLATFORM, SITE, TASKS, binding_of, static_binding

    ours = {name: t for name, t in app.tasks.items() if name.startswith("siteops.")}
    assert len(ours) >= 8
    for name, task in ours.items():
        declared = SITE if task.site_bound else PLATFORM
        assert binding_of(name) is declared, name
        # The package's own tasks are routed right by the table alone: a plain client
        # that never imported them sends them where the task object would.
        if task.__module__.startswith("siteops."):
            assert static_binding(name) is declared, (
                f"{name} (site_bound={task.site_bound}) needs its line in siteops/config/queues.py TASKS")
    # No stale entry: every listed name is a task that exists.
    assert set(TASKS) <= set(ours)


def test_the_schedules_kinds_are_the_scan_tasks() -> None:
    from siteops.config.sites import SCAN_KINDS
    from siteops.rules.findings import KINDS

    assert set(SCAN_KINDS) == set(KINDS)


def test_a_declaration_that_contradicts_the_table_is_refused() -> None:
    from siteops.tasks.base import siteops_task

    with pytest.raises(ValueError, match=r"siteops/config/queues\.py routes it to platform"):
        siteops_task("siteops.ops.recover_lost", site_bound=True)
    with pytest.raises(ValueError, match=r"routes it to site\.<CODE>"):
        siteops_task("siteops.scan.something_new", site_bound=False)


def route(app, name, args=(), kwargs=None, **options):
    return app.amqp.router.route(options, name, list(args), kwargs or {}, None)["queue"].name


def test_routes_by_name_without_a_task_object(app) -> None:
    assert route(app, "siteops.scan.aging_transfers", ["NORTH"]) == "site.NORTH"
    assert route(app, "siteops.alerts.send_webhook", [], {"site": "WEB", "finding_id": 1}) == "site.WEB"
    assert route(app, "siteops.ops.recover_lost") == "platform"
    # An open area (plug-ins, areas being written) routes any verb by its area's binding.
    assert route(app, "siteops.shipping.book_shipment", ["EAST"]) == "site.EAST"
    # Celery's own tasks are cross-site.
    assert route(app, "celery.backend_cleanup") == "platform"
    # An explicit destination that agrees is fine (beat's entries carry one).
    assert route(app, "siteops.scan.aging_transfers", ["CW"], queue="site.CW") == "site.CW"


@pytest.mark.parametrize(
    ("name", "args", "options", "error", "words"),
    [
        ("siteops.scan.aging_transfers", ["NOPE"], {}, "UnknownSite", ["'NOPE'", "CW, NORTH, SOUTH, EAST, WEB"]),
        ("siteops.scan.aging_transfers", ["north"], {}, "UnknownSite", ["'north'", "'NORTH'"]),
        ("siteops.scan.aging_transfers", [], {}, "UnknownSite", ["None"]),
        ("siteops.scan.nope", ["NORTH"], {}, "UnknownTask", ["'siteops.scan.nope'", "siteops.scan.aging_transfers"]),
        ("siteops.nope.ping", ["NORTH"], {}, "UnknownTask", ["known tasks", "siteops.ops.ping"]),
        ("not_ours", [], {}, "UnknownTask", ["'not_ours'"]),
        ("siteops.scan.aging_transfers", ["NORTH"], {"queue": "platform"}, "WrongQueue", ["'site.NORTH'"]),
        ("siteops.scan.aging_transfers", ["NORTH"], {"queue": "site.SOUTH"}, "WrongQueue", ["'site.SOUTH'"]),
    ],
)
def test_refused_before_a_message_exists(app, name, args, options, error, words) -> None:
    from siteops.config import queues

    with pytest.raises(getattr(queues, error)) as info:
        route(app, name, args, **options)
    for word in words:
        assert word in str(info.value)


def test_a_plug_in_of_an_open_area_may_declare_its_own_binding(app) -> None:
    from siteops.config.queues import PLATFORM, binding_of, register_task, static_binding

    register_task("siteops.testing.platform_probe", site_bound=False)
    assert static_binding("siteops.testing.platform_probe") is not PLATFORM  # the area's default
    assert binding_of("siteops.testing.platform_probe") is PLATFORM  # this process knows better
    assert route(app, "siteops.testing.platform_probe") == "platform"
