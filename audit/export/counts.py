"""What an export wrote, counted while it streamed (for the audit log and the CLI)."""

from __future__ import annotations

from dataclasses import dataclass

from audit.export.packs import Pack


@dataclass
class Counts:
    conversations: int = 0
    messages: int = 0
    findings: int = 0
    rows: int = 0  # lines, CSV rows or training examples, depending on the format

    def add(self, pack: Pack) -> None:
        self.conversations += 1
        self.messages += len(pack.messages)
        self.findings += sum(len(m.findings) for m in pack.messages)
