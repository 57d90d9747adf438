"""Digest tests reuse the export tests' chain (tests/export/qa_world.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "export"))

from qa_world import World, seed_world


@pytest.fixture
def world(engine: Engine) -> World:
    return seed_world(engine)
