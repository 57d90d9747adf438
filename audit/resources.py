"""Where the data folders the package reads live: ``wordlists/``, ``models/``, ``dashboards/``.

They sit at the top of a source checkout (data a compliance officer edits, not code), and a
built wheel carries a copy inside the package (``audit/_bundled/``, written by ``setup.py``),
so an installed package finds them from any directory. A configured relative path is taken
from the working directory first, so a deployment can point at its own word lists.
"""

from __future__ import annotations

from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parent.parent
BUNDLED = Path(__file__).resolve().parent / "_bundled"
FOLDERS = ("wordlists", "models", "dashboards")


class ResourceMissing(FileNotFoundError):
    """A data folder found nowhere; the message lists where it was looked for."""


def locate(configured: Path) -> Path:
    """``configured`` as given when absolute or present in the working directory, else beside
    the source checkout, else in the installed package; a clear error when none exists."""
    if configured.is_absolute():
        if configured.exists():
            return configured
        raise ResourceMissing(f"{configured} does not exist")
    candidates = [configured, SOURCE_ROOT / configured]
    if configured.parts and configured.parts[0] in FOLDERS:
        candidates.append(BUNDLED / configured)
    for candidate in candidates:
        if candidate.exists():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise ResourceMissing(
        f"{configured} not found (looked in {looked}): set its path in the configuration "
        "or install the package from a wheel that bundles it"
    )


def data_path(configured: Path) -> Path:
    """A data folder (wordlists, models) as :func:`locate` finds it; a configuration error
    when it is nowhere."""
    from audit.config import ConfigError

    try:
        return locate(configured)
    except ResourceMissing as exc:
        raise ConfigError(str(exc)) from None
