"""The export tests' database: see :mod:`qa_world`."""

from __future__ import annotations

import pytest
from qa_world import World, seed_world
from sqlalchemy import Engine


@pytest.fixture
def world(engine: Engine) -> World:
    return seed_world(engine)
