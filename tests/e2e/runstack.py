"""Starting `siteops run` (what `make run` starts) from a test, and counting what it left.

Every process the stack starts inherits SITEOPS_VAR_DIR (a fresh folder per test), so
`processes_with(var)` finds every one of them, wherever it was re-parented.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import _free_port

#: The cheap stack: Redis, the webhook receiver and one site worker (with its pool).
CHEAP = ("--site", "CW", "--without", "odoo", "--without", "carrier", "--without", "edi", "--without", "ingress",
         "--without", "platform", "--without", "beat", "--without", "flower", "--without", "exporter",
         "--without", "scans")


def processes_with(marker: str) -> list[int]:
    """Pids whose environment or command line carries `marker` (zombies excluded)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            if stat[stat.rfind(")") + 2:].startswith("Z"):
                continue
            if marker.encode() in (proc / "environ").read_bytes() or marker.encode() in (
                    proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def pgid_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rfind(")") + 2:].split()[2])


@dataclass
class RunStack:
    """The command line and environment of one `siteops run` with free ports."""

    var: Path
    flower_port: int = field(default_factory=_free_port)
    exporter_port: int = field(default_factory=_free_port)
    odoo_port: int = field(default_factory=_free_port)
    webhook_port: int = field(default_factory=_free_port)
    carrier_port: int = field(default_factory=_free_port)
    ingress_port: int = field(default_factory=_free_port)
    broker_port: int = field(default_factory=_free_port)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SITEOPS_", "PROMETHEUS_", "FLOWER_"))}
        env.update(SITEOPS_VAR_DIR=str(self.var), SITEOPS_BROKER_URL=f"redis://127.0.0.1:{self.broker_port}/0")
        return env

    def argv(self, *extra: str) -> list[str]:
        return [sys.executable, "-m", "siteops.cli", "run", "--flower-port", str(self.flower_port),
                "--exporter-port", str(self.exporter_port), "--odoo-port", str(self.odoo_port),
                "--webhook-port", str(self.webhook_port), "--carrier-port", str(self.carrier_port),
                "--ingress-port", str(self.ingress_port), *extra]
