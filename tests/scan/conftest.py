"""Scanner tests never read or write the user's automaton cache."""

from __future__ import annotations

import os
import tempfile

os.environ["AUDIT_SCAN_CACHE"] = tempfile.mkdtemp(prefix="audit-scan-cache-")
