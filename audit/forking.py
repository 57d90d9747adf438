"""Batches handed to worker processes while this process writes the batches before, in order.

The scan stage's readers are forked, so they inherit the loaded scanner and models instead
of unpickling them each. Workers that open database connections of their own (the scoring
stage's) are started instead as fresh interpreters (``spawn``) with their state pickled
once: a fork copies whatever locks this process's other threads
hold at that moment (a notification server's, a progress bar's, the database driver's) and
SQLite's per-process bookkeeping of its file locks, and a child that needs one of them waits
for ever.

A process that dies (killed by the kernel for its memory, or by a crash in a native library)
takes the batches in flight with it: each is then run again alone in a process of its own, so
only a batch that kills its process even alone raises ``BrokenProcessPool`` where it is
awaited, and the batches after it go to a new pool. Nothing waits for ever on a dead process.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
S = TypeVar("S")

# The workers' state: in a forked pool, set just before the pool forks and cleared after it;
# in a fresh one, set in each worker as it starts.
_STATE: Any = None


def _set_state(state: Any) -> None:
    global _STATE
    _STATE = state


def _call(fn: Callable[[Any, Any], T], batch: Any) -> T:
    return fn(_STATE, batch)


@contextmanager
def worker_pool(
    workers: int, state: S, fn: Callable[[S, Any], T], *, inherit: bool = True
) -> Iterator[Callable[[Any], Callable[[], T]] | None]:
    """``start(batch)``: runs ``fn(state, batch)`` in one of ``workers`` processes and returns
    what waits for its result. None where there is nothing to gain: one worker, or a platform
    without the start method. ``fn`` must be a module-level function (it is sent by name).

    ``inherit``: the processes are forked and inherit ``state`` as it is (large, or not
    picklable). Otherwise they start fresh and ``state`` is pickled to each once."""
    method = "fork" if inherit else "spawn"
    if workers <= 1 or method not in multiprocessing.get_all_start_methods():
        yield None
        return
    context = multiprocessing.get_context(method)
    if inherit:
        _set_state(state)
        options: dict[str, Any] = {}
    else:
        options = {"initializer": _set_state, "initargs": (state,)}

    def pool(size: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(size, mp_context=context, **options)

    pools = [pool(workers)]

    def alone(batch: Any) -> T:
        with pool(1) as single:
            return single.submit(_call, fn, batch).result()

    def start(batch: Any) -> Callable[[], T]:
        try:
            future = pools[-1].submit(_call, fn, batch)
        except BrokenProcessPool:
            pools.append(pool(workers))
            future = pools[-1].submit(_call, fn, batch)

        def wait() -> T:
            try:
                return future.result()
            except BrokenProcessPool as exc:  # this batch or one beside it killed a process
                log.warning(
                    "%s: a worker process died (%s); its batch is run again alone",
                    fn.__name__,
                    exc.__cause__ or exc,
                )
                return alone(batch)

        return wait

    try:
        yield start
    except BaseException:
        for each in pools:
            each.shutdown(cancel_futures=True)
        raise
    finally:
        for each in pools:
            each.shutdown()
        if inherit:
            _set_state(None)
