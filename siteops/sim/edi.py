"""`siteops sim edi`: a simulated supplier on each partner's mailbox directory.

It collects our orders (850 / ORDERS) from `var/edi/<PARTNER>/out/` and answers in
`in/`, each in its own file written then renamed: a 997 / CONTRL accepting the order's
group (interchange), an 855 / ORDRSP, and an 856 / DESADV for what it ships. The answer
is derived from the order itself, deterministically: with two lines or more the second
line's quantity is cut by one and its date moved 3 days later; with three or more, the
third line is rejected; one order in four is accepted as is. Acknowledgments we send
(997 / CONTRL) are collected and ignored. It keeps its own control numbers and the names
it has collected in dot files of the mailbox.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from siteops.config.edi import EdiConfig, Partner
from siteops.connectors.edi import edifact, edifact_docs, x12, x12_docs
from siteops.connectors.edi.errors import EdiError
from siteops.connectors.edi.model import (
    AckLine,
    Acknowledgment,
    FunctionalAck,
    PurchaseOrder,
    SetResult,
    ShipItem,
    ShipNotice,
    ShipOrder,
    ShipPack,
)

log = logging.getLogger(__name__)


def answer(order: PurchaseOrder, today: dt.date) -> tuple[Acknowledgment, ShipNotice]:
    """The supplier's acknowledgment and ship notice for one order (deterministic)."""
    digest = int(hashlib.sha256(order.number.encode()).hexdigest(), 16)
    as_is = digest % 4 == 0
    promised = (order.requested_delivery or today + dt.timedelta(days=5))
    lines: list[AckLine] = []
    shipped: list[ShipItem] = []
    for index, line in enumerate(order.lines):
        if not as_is and index == 1:
            qty = max(Decimal(1), line.quantity - 1)
            lines.append(AckLine(line.line_no, "changed", qty, promised + dt.timedelta(days=3)))
            shipped.append(ShipItem(line.line_no, qty, line.uom, line.buyer_part))
        elif not as_is and index == 2:
            lines.append(AckLine(line.line_no, "rejected"))
        else:
            lines.append(AckLine(line.line_no, "accepted", line.quantity, promised))
            shipped.append(ShipItem(line.line_no, line.quantity, line.uom, line.buyer_part))
    kind = "accepted" if all(a.status == "accepted" for a in lines) else "changed"
    ack = Acknowledgment(po_number=order.number, kind=kind, date=today, lines=tuple(lines), ship_to=order.ship_to,  # type: ignore[arg-type]
                         supplier_order=f"SO-{digest % 100000:05d}")
    packs = tuple(ShipPack(sscc=f"00354123450{(digest + i) % 10**9:09d}", items=(item,))
                  for i, item in enumerate(shipped))
    asn = ShipNotice(shipment_id=f"ASN-{order.number}", shipped=today, ship_to=order.ship_to,
                     orders=(ShipOrder(order.number, packs),), expected_delivery=promised + dt.timedelta(days=3),
                     carrier="SIMF", bill_of_lading=f"BOL-{digest % 10**6:06d}", tracking=f"SIM{digest % 10**10:010d}")
    return ack, asn


class Supplier:
    def __init__(self, config: EdiConfig, partner: Partner, root: Path) -> None:
        self.config, self.partner, self.root = config, partner, root
        for sub in ("out", "in"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self.state_file = root / ".supplier.json"
        self.state: dict[str, Any] = json.loads(self.state_file.read_text()) if self.state_file.exists() else \
            {"seen": [], "control": 0}

    def _save(self) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state))
        os.replace(tmp, self.state_file)

    def _next(self) -> int:
        self.state["control"] += 1
        return int(self.state["control"])

    def _drop(self, name: str, text: str) -> None:
        tmp = self.root / "in" / f".{name}.tmp"
        tmp.write_bytes(text.encode("latin-1", errors="replace"))
        os.replace(tmp, self.root / "in" / name)

    def _us(self) -> tuple[str, str]:
        return self.config.our_party(self.partner)

    def _x12(self, code: str, fid: str, body: list[list[str]], when: dt.datetime) -> str:
        n = self._next()
        q, ours = self._us()
        return x12.render(sender=x12.Party(self.partner.interchange_qualifier, self.partner.interchange_id),
                          receiver=x12.Party(q, ours), control=n, group_control=n, functional_id=fid,
                          sets=[(code, "0001", body)], when=when)

    def _edifact(self, kind: str, body: list[list[Any]], when: dt.datetime) -> str:
        q, ours = self._us()
        return edifact.render(sender=(self.partner.interchange_id, self.partner.interchange_qualifier),
                              recipient=(ours, q), control=self._next(), when=when,
                              messages=[("1", edifact_docs.S009[kind], body)])

    def handle(self, name: str, text: str, today: dt.date) -> list[str]:
        """Answer one collected file; the names of the files dropped."""
        when = dt.datetime.combine(today, dt.time(12, 0))
        dropped: list[str] = []
        if self.partner.standard == "x12":
            ic = x12.parse(text)
            for group in ic.groups:
                if group.functional_id != "PO":
                    continue
                fa = FunctionalAck(group.control, "PO", True, tuple(SetResult(s.code, s.control, True)
                                                                     for s in group.sets))
                files = [("997", self._x12("997", "FA", x12_docs.write_997(fa), when))]
                for tset in group.sets:
                    order = x12_docs.read_850(tset)
                    ack, asn = answer(order, today)
                    files += [("855", self._x12("855", "PR", x12_docs.write_855(ack), when)),
                              ("856", self._x12("856", "SH", x12_docs.write_856(asn), when))]
                for code, body in files:  # named so that the acknowledgment sorts before the ship notice
                    out = f"{self._next():06d}_{code}.edi"
                    self._drop(out, body)
                    dropped.append(out)
            return dropped
        ic2 = edifact.parse(text)
        if any(m.type == "ORDERS" for m in ic2.messages):
            q, ours = self._us()
            fa = FunctionalAck(ic2.control, "ORDERS", True, tuple(SetResult(m.type, m.reference, True)
                                                                  for m in ic2.messages))
            files = [("CONTRL", self._edifact("CONTRL", edifact_docs.write_contrl(
                fa, sender=(ours, q), recipient=(self.partner.interchange_id, self.partner.interchange_qualifier)),
                when))]
            for msg in ic2.messages:
                ack, asn = answer(edifact_docs.read_orders(msg), today)
                files += [("ORDRSP", self._edifact("ORDRSP", edifact_docs.write_ordrsp(ack), when)),
                          ("DESADV", self._edifact("DESADV", edifact_docs.write_desadv(asn), when))]
            for code, body in files:
                out = f"{self._next():06d}_{code}.edi"
                self._drop(out, body)
                dropped.append(out)
        return dropped

    def poll(self, today: dt.date | None = None) -> list[str]:
        today = today or dt.date.today()
        dropped: list[str] = []
        for entry in sorted(os.scandir(self.root / "out"), key=lambda e: e.name):
            if not entry.is_file() or entry.name.startswith(".") or entry.name in self.state["seen"]:
                continue
            self.state["seen"].append(entry.name)
            try:
                dropped += self.handle(entry.name, Path(entry.path).read_text("latin-1"), today)
            except EdiError as exc:  # a real supplier would answer with a rejecting 997; we log it
                log.warning("supplier %s: cannot read %s: %s", self.partner.id, entry.name, exc)
            self._save()
        return dropped


def suppliers(config: EdiConfig, var: Path) -> list[Supplier]:
    return [Supplier(config, p, var / "edi" / p.id) for p in config if p.transport == "mailbox"]


def serve(config: EdiConfig, var: Path, *, interval: float = 1.0, once: bool = False) -> int:
    group = suppliers(config, var)
    total = 0
    while True:
        for supplier in group:
            dropped = supplier.poll()
            total += len(dropped)
            for name in dropped:
                log.info("supplier %s answered: %s", supplier.partner.id, name)
        if once:
            return total
        time.sleep(interval)
