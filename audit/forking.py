"""Batches handed to forked processes that inherit what this process has loaded.

The scan and score stages read batches in a few processes while their own process writes
the batches before, in order. The processes are forked, so a scanner, its models and a
scorecard are loaded once and shared, not pickled to each. A process that dies (killed by
the kernel for its memory, say) breaks the pool: what waits for it raises
``BrokenProcessPool`` instead of waiting for ever, and the stage does that batch in line.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")
S = TypeVar("S")

# What the forked processes inherit: set just before the pool forks, cleared after it.
_INHERITED: Any = None


def _call(fn: Callable[[Any, Any], T], batch: Any) -> T:
    return fn(_INHERITED, batch)


@contextmanager
def forked(
    workers: int, inherited: S, fn: Callable[[S, Any], T]
) -> Iterator[Callable[[Any], Callable[[], T]] | None]:
    """``start(batch)``: runs ``fn(inherited, batch)`` in one of ``workers`` forked
    processes and returns what waits for its result. None where there is nothing to gain or
    no fork: one worker, or a platform that only spawns. ``fn`` must be a module-level
    function (it is sent by name).

    A process that dies takes the batches in flight with it: each is then run again alone
    in a process of its own, so only a batch that kills its process even alone raises
    ``BrokenProcessPool``, and the batches after it go to a new pool."""
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        yield None
        return
    global _INHERITED
    _INHERITED = inherited
    context = multiprocessing.get_context("fork")
    pools = [ProcessPoolExecutor(workers, mp_context=context)]

    def alone(batch: Any) -> T:
        with ProcessPoolExecutor(1, mp_context=context) as single:
            return single.submit(_call, fn, batch).result()

    def start(batch: Any) -> Callable[[], T]:
        try:
            future = pools[-1].submit(_call, fn, batch)
        except BrokenProcessPool:
            pools.append(ProcessPoolExecutor(workers, mp_context=context))
            future = pools[-1].submit(_call, fn, batch)

        def wait() -> T:
            try:
                return future.result()
            except BrokenProcessPool:  # this batch or one beside it killed a process
                return alone(batch)

        return wait

    try:
        yield start
    except BaseException:
        for pool in pools:
            pool.shutdown(cancel_futures=True)
        raise
    finally:
        for pool in pools:
            pool.shutdown()
        _INHERITED = None
