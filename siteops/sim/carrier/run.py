"""What `siteops run` adds for shipping: the carrier simulator, the tracking webhook endpoint,
their environment, and a first label run for every site (kept here, so the runner's edit is small)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from pathlib import Path

CARRIER_PORT = 8071
WEBHOOK_PORT = 8072


def carrier_env(var: Path, carrier_port: int = CARRIER_PORT) -> dict[str, str]:
    """The demo's carrier account: the simulator, a test key, the tracking webhook's secret (0600)."""
    path = var / "carrier-webhook-secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(24) + "\n")
        path.chmod(0o600)
    return {"SITEOPS_EASYPOST_URL": f"http://127.0.0.1:{carrier_port}/v2", "SITEOPS_EASYPOST_API_KEY": "EZTK_demo",
            "SITEOPS_EASYPOST_WEBHOOK_SECRET_FILE": str(path)}


def carrier_children(siteops: list[str], var: Path, logs: Path, carrier_port: int = CARRIER_PORT, *,
                     webhook_url: str) -> list[tuple[str, list[str], Path]]:
    """(name, argv, log) of the carrier simulator, pushing tracking webhooks to the ingress at
    `webhook_url` (its `/hooks/easypost` route, signed with the account's webhook secret)."""
    return [
        ("carrier simulator", [*siteops, "sim", "carrier", "--port", str(carrier_port), "--step-seconds", "20",
                               "--webhook-url", f"{webhook_url.rstrip('/')}/hooks/easypost",
                               "--webhook-secret-file", str(var / "carrier-webhook-secret")], logs / "carrier-sim.log"),
    ]


def first_labels(codes: Iterable[str], delay: float = 20.0) -> None:
    """A first ship_ready per site soon, rather than at beat's next slot (5 minutes).

    Not at once: a site's first labels are tens of tasks on its queue, and the first scans
    and an operator's first commands (`siteops enqueue siteops.ops.ping`) should not wait
    behind them. A short countdown, well inside the broker's visibility timeout.
    """
    from siteops.celery_app import app

    for index, code in enumerate(codes):
        app.tasks["siteops.shipping.ship_ready"].apply_async(args=[code], countdown=delay + 5 * index)
