"""`reconcile po-acks`: confirmed purchase orders against the EDI exchanges (store.exchanges).

- never sent: a confirmed order of an EDI vendor with no order exchange (or one left
  `new`) -> a real run sends it through the EDI connector's own `dispatch_po` (its
  operation `edi:<partner>:order:<po>` makes a second send impossible, whoever asks);
- sent, never acknowledged: no 855/ORDRSP by the partner's deadline -> reported (the
  overdue sweep owns the finding; resending would give the partner a duplicate order);
- acknowledgment not applied: an 855/ORDRSP for this site waiting in the partner's
  mailbox that no poll applied -> a real run applies that file through the inbound path
  (`services.edi.process_file`: claim by checksum, apply, answer, archive).
"""

from __future__ import annotations

from typing import Any

from siteops.config.sites import Site
from siteops.rules import reconcile as rules
from siteops.rules.reconcile import Item
from siteops.store.models import utcnow

ACK_KINDS = ("855", "ORDRSP")


class PoAcks:
    def __init__(self, site: Site, odoo: Any, since: str | None, until: str | None) -> None:
        from siteops.config.edi import get_edi

        self.site, self.odoo = site, odoo
        self.config = get_edi()
        self.partners = self.config.for_site(site.code)
        refs = [p.odoo_vendor_ref for p in self.partners]
        vendors = odoo.search_read("res.partner", [("ref", "in", refs)], ["id"]) if refs else []
        self.domain: list[Any] = [
            ("state", "in", ["purchase", "done"]), ("partner_id", "in", [int(v["id"]) for v in vendors] or [0]),
            ("picking_type_id.warehouse_id.code", "=", site.odoo_warehouse), ("receipt_status", "!=", "full")]
        if since:
            self.domain.append(("date_order", ">=", since))
        if until:
            self.domain.append(("date_order", "<", until))

    def total(self) -> int:
        return int(self.odoo.search_count("purchase.order", self.domain)) + 1  # + the mailbox step

    def batch(self, cursor: dict[str, Any], size: int) -> tuple[list[Item], dict[str, Any] | None, int]:
        from siteops.store import exchanges

        if cursor.get("phase") == "inbox":
            return self._inbox(), None, 1
        rows = self.odoo.search_read("purchase.order", [*self.domain, ("id", ">", int(cursor.get("after") or 0))],
                                     ["id", "name", "state"], order="id asc", limit=size)
        if not rows:
            return self._inbox(), None, 1
        now = utcnow()
        items: list[Item] = []
        for po in rows:
            x = exchanges.find_outbound_for_po(int(po["id"]))
            view = None
            if x is not None and x.state != exchanges.ExchangeState.NEW:
                due = x.ack_due_at
                view = {"id": x.id, "state": x.state, "sent_at": x.updated_at.isoformat(),
                        # Within its deadline an order is not (yet) drift.
                        "ack_received": bool(x.responded_at) or x.state == exchanges.ExchangeState.ERROR
                        or (due is not None and due > now),
                        "ack_applied": True}
            item = rules.plan_po_ack(po, view, edi_partner=True)
            if item is not None:
                items.append(item)
        return items, {"phase": "orders", "after": int(rows[-1]["id"])}, len(rows)

    def _inbox(self) -> list[Item]:
        """Acknowledgments for this site waiting in the partners' mailboxes, never applied."""
        from siteops.connectors.edi.errors import EdiError
        from siteops.connectors.edi.inbound import read
        from siteops.connectors.edi.model import Acknowledgment
        from siteops.connectors.edi.transport import open_transport
        from siteops.services.edi import _sha
        from siteops.store import exchanges

        items = []
        for partner in self.partners:
            transport = open_transport(partner)
            try:
                for name in sorted(transport.incoming()):
                    try:
                        data = transport.fetch(name)
                        inbound = read(data, self.config, mailbox_partner=partner.id)
                    except (FileNotFoundError, EdiError):
                        continue  # gone, or bad: the inbound poll quarantines it with its reason
                    seen = exchanges.by_checksum("in", partner.id, _sha(data))
                    if seen is not None and seen.state == exchanges.ExchangeState.APPLIED:
                        continue
                    for doc in inbound.documents:
                        if doc.kind in ACK_KINDS and isinstance(doc.doc, Acknowledgment):
                            sent = exchanges.find_outbound(partner.id, doc_types=("850", "ORDERS"),
                                                           business_key=doc.doc.po_number)
                            if sent is not None and sent.site == self.site.code:
                                items.append(Item("purchase.order", sent.odoo_id, doc.doc.po_number,
                                                  "ack_not_applied", {"partner": partner.id, "file": name,
                                                                      "exchange": sent.id}))
            finally:
                transport.close()
        return items

    def apply(self, item: Item, call: Any, key: str) -> Any:
        from siteops.services import edi

        if item.change == "po_never_sent":
            return edi.dispatch_po(self.site.code, int(item.record_id or 0), odoo=self.odoo, once=call)
        if item.change == "ack_not_applied":
            from siteops.connectors.edi.transport import open_transport

            partner = self.config.get(str(item.detail["partner"]))
            transport = open_transport(partner)
            try:
                name = str(item.detail["file"])
                try:
                    data = transport.fetch(name)
                except FileNotFoundError:
                    return {"skipped": "the file was taken by the inbound poll meanwhile"}
                # The inbound path itself: one claim per checksum, idempotent Odoo writes.
                outcome, findings = edi.process_file(self.site.code, partner, transport, name, data, odoo=self.odoo,
                                                     once=call, config=self.config)
            finally:
                transport.close()
            return {"outcome": outcome, "findings": findings}
        raise ValueError(f"po-acks: no apply step for {item.change}")
