"""Queue names, their declarations and the site router.

Import-light on purpose (kombu only): the worker start scripts, the exporter and the
tests read queue names from here without loading the Celery app or any task module.

- ``site.<CODE>``: everything done for one site (scans, connector calls, reconciliations).
  One queue per site so one site's backlog or broken carrier never stalls another; a
  site's worker consumes only its own queue.
- ``platform``: cross-site housekeeping (lost-work recovery, sweeps). Never site work.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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


class _SiteRegistry(Protocol):
    @property
    def codes(self) -> tuple[str, ...]: ...


class UnknownSite(ValueError):
    """Raised at enqueue time, in the caller's process, for a site not in sites.toml."""

    def __init__(self, site: object, known: Sequence[str], context: str = "") -> None:
        prefix = f"{context}: " if context else ""
        super().__init__(f"{prefix}unknown site {site!r}; known sites: {', '.join(known)}")
        self.site = site
        self.known = tuple(known)


class SiteRouter:
    """Route site-bound tasks to ``site.<CODE>`` by their first argument.

    A task declares itself site-bound with the ``site_bound`` attribute (the base class
    does this). Anything else goes to ``platform``. An unknown or missing site raises
    `UnknownSite` from ``apply_async``, before a message exists.
    """

    def __init__(self, registry: _SiteRegistry) -> None:
        self._known = frozenset(registry.codes)
        self._order = registry.codes

    def __call__(
        self,
        name: str,
        args: Sequence[Any] | None,
        kwargs: Mapping[str, Any] | None,
        options: Mapping[str, Any],
        task: Any = None,
        **_: Any,
    ) -> dict[str, str]:
        if task is None or not getattr(task, "site_bound", False):
            return {"queue": PLATFORM_QUEUE, "routing_key": PLATFORM_QUEUE}
        site: object = args[0] if args else (kwargs or {}).get("site")
        if not isinstance(site, str) or site not in self._known:
            raise UnknownSite(site, self._order, context=name)
        queue = site_queue(site)
        return {"queue": queue, "routing_key": queue}
