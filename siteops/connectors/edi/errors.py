"""What is wrong with an EDI file, said so that a person can find it.

Every error names the segment and its position in the interchange (the first segment,
ISA or UNB, is position 1), and carries a short machine code for the exchange record,
the quarantine reason file and the finding.
"""

from __future__ import annotations

from siteops.connectors.errors import PermanentError


class EdiError(PermanentError):
    """A file we will not apply. `code` is stable (e.g. ``count_mismatch``)."""

    def __init__(self, code: str, message: str, *, segment: str = "", position: int | None = None) -> None:
        where = f"segment {segment or '?'} at position {position}: " if position is not None else (
            f"segment {segment}: " if segment else "")
        super().__init__(f"{where}{message}", system="edi", operation="read")
        self.code = code
        self.segment = segment
        self.position = position
        self.detail = message

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "segment": self.segment, "position": self.position, "message": str(self)}
