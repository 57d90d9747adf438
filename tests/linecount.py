"""Work counted, never timed: the Python lines a call executes (a trace hook)."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any


def lines_run(run: Callable[[], object]) -> int:
    """Python lines executed by ``run()``. No garbage collection while counting: a finalizer
    of another test's objects (a connection pool, a temporary file) would run its lines
    inside the count."""
    count = 0

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return trace

    gc.collect()
    gc.disable()
    sys.settrace(trace)
    try:
        run()
    finally:
        sys.settrace(None)
        gc.enable()
    return count
