"""Dry runs: every digest written to files instead of sent (``audit digest --to-file DIR``).

``DIR/<day>/<channel>-<recipient>.{txt,html,md}``, recipient keys made safe for file names.
"""

from __future__ import annotations

import re
from pathlib import Path

from audit.digest.recipients import Recipient
from audit.digest.render import RenderedDigest


class FileChannel:
    def __init__(self, directory: Path, day: str, name: str = "file") -> None:
        self.directory = directory
        self.day = day
        self.name = name
        self.written: list[Path] = []

    def send(self, recipient: Recipient, digest: RenderedDigest) -> int:
        folder = self.directory / self.day
        folder.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^\w.@-]+", "_", f"{recipient.channel}-{recipient.key}")
        files = {"txt": digest.text, "html": digest.html, "md": digest.markdown}
        if recipient.channel != "email":
            files = {"md": digest.markdown}
        for ext, body in files.items():
            path = folder / f"{stem}.{ext}"
            path.write_text(
                body if ext != "txt" else f"Subject: {digest.subject}\n\n{body}", "utf-8"
            )
            self.written.append(path)
        return len(files)
