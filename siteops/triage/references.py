"""References a customer cites, found in the text. Pure: text in, references out.

The patterns are those of the Odoo sequences the sites use (sale orders `S00042`,
purchase orders `P00012`, pickings `<WAREHOUSE>/<OUT|IN|INT>/00012`) and the tracking
codes the carrier connector stores (USPS-style `9400` + 18 digits from EasyPost, or
EasyPost's test codes `EZ...`). Whether a reference exists, and which site owns it, is
looked up in Odoo by the service, never guessed from the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PICKING = re.compile(r"\b([A-Z][A-Z0-9]{0,4}/(?:OUT|IN|INT|PICK|PACK|RET)/\d{3,6})\b")
SALE = re.compile(r"\b(S\d{5})\b")
PURCHASE = re.compile(r"\b(P\d{5})\b")
TRACKING = re.compile(r"\b(9[2-5]\d{20}|EZ\d{10}[A-Z]?|1Z[0-9A-Z]{16})\b")

#: What each kind of reference is in Odoo, and how to find it there.
MODELS = {"picking": "stock.picking", "sale": "sale.order", "purchase": "purchase.order",
          "tracking": "stock.picking"}


@dataclass(frozen=True)
class Reference:
    kind: str  # picking, sale, purchase, tracking
    value: str

    @property
    def model(self) -> str:
        return MODELS[self.kind]


def find_references(text: str, limit: int = 10) -> list[Reference]:
    """Every distinct reference in order of appearance (at most `limit`: a pasted statement
    citing a hundred orders is not a message about a hundred orders)."""
    found: list[tuple[int, Reference]] = []
    for kind, pattern in (("picking", PICKING), ("sale", SALE), ("purchase", PURCHASE), ("tracking", TRACKING)):
        for m in pattern.finditer(text.upper() if kind == "picking" else text):
            found.append((m.start(), Reference(kind, m.group(1))))
    out: list[Reference] = []
    for _, ref in sorted(found, key=lambda f: f[0]):
        if ref not in out:
            out.append(ref)
    return out[:limit]
