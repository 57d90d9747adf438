"""Bundle the top-level data folders into the wheel (everything else is in pyproject.toml).

``wordlists/``, ``models/`` and ``dashboards/`` stay at the top of the source tree, where
people edit them; an installed package finds its copy in ``audit/_bundled/``
(see ``audit/resources.py``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

FOLDERS = ("wordlists", "models", "dashboards")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the folders in place
            return
        root = Path(__file__).resolve().parent
        target = Path(self.build_lib) / "audit" / "_bundled"
        for name in FOLDERS:
            shutil.copytree(root / name, target / name, ignore=SKIP, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildWithData})
