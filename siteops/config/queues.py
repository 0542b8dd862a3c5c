"""Queue names, their declarations, the task table and the router by task NAME.

Import-light on purpose (kombu only): the worker start scripts, the exporter, the tests
and any plain client (`app.send_task` by name, `celery call`, Flower's task API) read
queue names and routes from here without loading any task module.

- ``site.<CODE>``: everything done for one site (scans, connector calls, reconciliations).
  One queue per site so one site's backlog or broken carrier never stalls another; a
  site's worker consumes only its own queue.
- ``platform``: cross-site housekeeping (lost-work recovery, sweeps). Never site work.

Where a task runs is decided from its name alone, by the table below: a producer that
never imported the task (so has no task object, no ``site_bound`` attribute) still sends
a site task to its site's queue and is refused an unknown site or an unknown name before
a message exists.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

from kombu import Exchange, Queue

PLATFORM_QUEUE = "platform"
SITE_QUEUE_PREFIX = "site."

# One direct exchange; the routing key is the queue name, so a message can only ever
# land in the queue it was routed to (task_create_missing_queues is off).
EXCHANGE = Exchange("siteops", type="direct")


def site_queue(code: str) -> str:
    return f"{SITE_QUEUE_PREFIX}{code}"


def queue_names(site_codes: Iterable[str]) -> list[str]:
    return [site_queue(code) for code in site_codes] + [PLATFORM_QUEUE]


def declare_queues(site_codes: Iterable[str]) -> tuple[Queue, ...]:
    return tuple(Queue(name, EXCHANGE, routing_key=name) for name in queue_names(site_codes))


# --- the task table ------------------------------------------------------------------


class Binding(enum.Enum):
    #: Takes the site code as its first argument (or ``site=``); runs on ``site.<CODE>``.
    SITE = "site"
    #: Cross-site; runs on ``platform``.
    PLATFORM = "platform"


SITE = Binding.SITE
PLATFORM = Binding.PLATFORM


@dataclass(frozen=True)
class Area:
    """``siteops.<area>.*``: the binding of every task of the area.

    A closed area (the default) knows its tasks by their exact names (`TASKS`), so a
    misspelt name is refused at the producer. An open area accepts any verb: for areas
    whose tasks are still being written, and for plug-ins (test and bench tasks) whose
    names this table cannot list. A task of an open area that was never deployed is
    refused by the worker instead (unknown task).
    """

    binding: Binding
    open: bool = False


#: One line per area. A new site-bound area: `"siteops.<area>": Area(SITE, open=True)`;
#: close it (drop `open=True`) once its task names are listed in `TASKS`.
AREAS: Mapping[str, Area] = MappingProxyType({
    "siteops.scan": Area(SITE),
    "siteops.alerts": Area(SITE),
    "siteops.events": Area(SITE),  # Odoo record changes from the ingress and the catch-up
    "siteops.replenish": Area(SITE, open=True),  # shortages -> transfer or purchase requests
    "siteops.approvals": Area(SITE, open=True),  # approval tiers: decisions, escalation, outcome in Odoo
    "siteops.shipping": Area(SITE, open=True),  # carriers
    "siteops.edi": Area(SITE, open=True),
    "siteops.triage": Area(SITE),  # inbound customer messages (siteops/triage)
    "siteops.reconcile": Area(SITE, open=True),
    "siteops.testing": Area(SITE, open=True),  # tests/integration/fixture_tasks.py
    "siteops.bench": Area(SITE, open=True),  # bench/overhead_tasks.py
    # siteops.ops mixes site-bound diagnostics and platform housekeeping: exact names only.
})

#: Every task of a closed area, by exact name, with where it runs.
TASKS: Mapping[str, Binding] = MappingProxyType({
    "siteops.ops.ping": SITE,
    "siteops.ops.recover_lost": PLATFORM,
    "siteops.scan.aging_transfers": SITE,
    "siteops.scan.overdue_receipts": SITE,
    "siteops.scan.stock_anomalies": SITE,
    "siteops.scan.aging_backorders": SITE,
    "siteops.alerts.notify_odoo": SITE,
    "siteops.alerts.send_webhook": SITE,
    "siteops.events.record_changed": SITE,
    "siteops.events.catch_up": SITE,
    "siteops.triage.classify_message": SITE,
})

#: Tasks declared in this process that the table does not list (plug-ins in an area of
#: their own, loaded through SITEOPS_TASK_MODULES): `siteops_task` registers them, so a
#: process that imported them routes them; a plain client that did not refuses them.
_registered: dict[str, Binding] = {}


class UnknownTask(ValueError):
    """Raised at enqueue time for a ``siteops.*`` name no table or module declares."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        super().__init__(
            f"unknown task {name!r}; known tasks: {', '.join(known)}"
            f" (and any name under {', '.join(f'{a}.*' for a in open_areas())})"
        )
        self.name = name
        self.known = tuple(known)


def area_of(name: str) -> str:
    return name.rpartition(".")[0]


def open_areas() -> list[str]:
    return sorted(prefix for prefix, area in AREAS.items() if area.open)


def known_tasks() -> list[str]:
    """Every name a producer may send by name (open areas aside)."""
    return sorted({*TASKS, *_registered})


def binding_of(name: str) -> Binding:
    """Where a task runs, from its name alone; `UnknownTask` if no one declares it."""
    if name in TASKS:
        return TASKS[name]
    if name in _registered:
        return _registered[name]
    area = AREAS.get(area_of(name))
    if area is not None and area.open:
        return area.binding
    raise UnknownTask(name, known_tasks())


def static_binding(name: str) -> Binding | None:
    """What the table alone says (what a plain client that imported nothing routes by)."""
    if name in TASKS:
        return TASKS[name]
    area = AREAS.get(area_of(name))
    return area.binding if area is not None and area.open else None


def register_task(name: str, site_bound: bool) -> None:
    """Called by `siteops_task` for every declared task: refuses a declaration that
    contradicts an exact entry or a closed area (which every plain producer routes by),
    and remembers the others in this process (plug-ins, new tasks of open areas)."""
    declared = SITE if site_bound else PLATFORM
    area = AREAS.get(area_of(name))
    expected = TASKS.get(name)
    if expected is None and area is not None and not area.open:
        expected = area.binding
    if expected is not None and expected is not declared:
        raise ValueError(
            f"task {name!r} is declared site_bound={site_bound}, but siteops/config/queues.py "
            f"routes it to {'site.<CODE>' if expected is SITE else PLATFORM_QUEUE}: "
            "fix the declaration, or give it its own line in TASKS"
        )
    if name not in TASKS and static_binding(name) is not declared:
        _registered[name] = declared


# --- the router ----------------------------------------------------------------------


class _SiteRegistry(Protocol):
    @property
    def codes(self) -> tuple[str, ...]: ...


class UnknownSite(ValueError):
    """Raised at enqueue time, in the caller's process, for a site not in sites.toml."""

    def __init__(self, site: object, known: Sequence[str], context: str = "") -> None:
        prefix = f"{context}: " if context else ""
        hint = ""
        if isinstance(site, str) and site.upper() in known and site not in known:
            hint = f" (site codes are upper case: {site.upper()!r})"
        super().__init__(f"{prefix}unknown site {site!r}{hint}; known sites: {', '.join(known)}")
        self.site = site
        self.known = tuple(known)


class WrongQueue(ValueError):
    """An explicit ``queue=``/``routing_key=`` that contradicts the task's route."""


def _destination(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "name", value))


class SiteRouter:
    """Route by task NAME: site-bound tasks to ``site.<CODE>`` by their first argument
    (or ``site=``), platform tasks to ``platform``.

    Raises from ``send_task``/``apply_async``, before a message exists: `UnknownTask` for
    a ``siteops.*`` (or any non-Celery) name nobody declares, `UnknownSite` for a missing
    or unknown site, `WrongQueue` for an explicit destination that contradicts the route.
    """

    def __init__(self, registry: _SiteRegistry) -> None:
        self._known = frozenset(registry.codes)
        self._order = registry.codes

    def queue_for(self, name: str, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None) -> str:
        if name.startswith("celery."):  # Celery's own tasks (chord_unlock, backend_cleanup)
            return PLATFORM_QUEUE
        if binding_of(name) is PLATFORM:
            return PLATFORM_QUEUE
        site: object = args[0] if args else (kwargs or {}).get("site")
        if not isinstance(site, str) or site not in self._known:
            raise UnknownSite(site, self._order, context=name)
        return site_queue(site)

    def __call__(
        self,
        name: str,
        args: Sequence[Any] | None,
        kwargs: Mapping[str, Any] | None,
        options: Mapping[str, Any],
        task: Any = None,
        **_: Any,
    ) -> dict[str, str]:
        queue = self.queue_for(name, args, kwargs)
        # Celery lets an explicit destination win over the router; a site task sent to
        # another site's queue (or to platform) would run for the wrong site.
        for key in ("queue", "routing_key"):
            given = _destination((options or {}).get(key))
            if given is not None and given != queue:
                raise WrongQueue(f"{name}: {key}={given!r} contradicts its route to {queue!r}")
        return {"queue": queue, "routing_key": queue}
