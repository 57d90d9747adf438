"""The worker pools of the scan and score stages: forked processes inherit what this process
loaded (nothing is pickled to them but the batch), fresh ones hold none of its locks, and a
batch that kills its process fails alone: the batches beside it are done, nothing waits for
ever."""

from __future__ import annotations

import os
import signal
import threading
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pytest

from audit.forking import worker_pool


def _square_plus(state: dict[str, Any], batch: list[int]) -> tuple[int, list[int]]:
    return os.getpid(), [state["offset"](n * n) for n in batch]


_LOCK = threading.Lock()


def _lock_is_free(state: None, batch: int) -> bool:
    free = _LOCK.acquire(blocking=False)
    if free:
        _LOCK.release()
    return free


def _die_on(state: int, batch: int) -> int:
    if batch == state:
        os.kill(os.getpid(), signal.SIGKILL)  # as a crash in native code would end it
    return batch


def _plus_offset(state: dict[str, int], n: int) -> int:
    return n + state["offset"]


def test_the_processes_inherit_what_cannot_be_pickled_and_results_keep_their_batch() -> None:
    state = {"offset": lambda n: n + 1}  # a lambda: it reaches the processes only by fork
    with worker_pool(2, state, _square_plus) as start:
        assert start is not None
        waits = [start(list(range(b, b + 3))) for b in range(0, 30, 3)]
        results = [wait() for wait in waits]
    assert [n for _, part in results for n in part] == [n * n + 1 for n in range(30)]
    assert {pid for pid, _ in results} - {os.getpid()}, "nothing ran in a forked process"
    assert os.getpid() not in {pid for pid, _ in results}


def test_one_worker_means_in_line() -> None:
    with worker_pool(1, None, _die_on) as start:
        assert start is None


def test_a_batch_that_kills_its_process_fails_alone_and_the_others_are_done(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with worker_pool(2, 3, _die_on) as start:
        assert start is not None
        waits = [start(b) for b in range(6)]
        outcome: list[object] = []
        for wait in waits:
            try:
                outcome.append(wait())
            except BrokenProcessPool:
                outcome.append("died")
        assert start(7)() == 7  # after the crash: a new pool
    # batches in flight beside the killer were run again alone, not blamed
    assert outcome == [0, 1, 2, "died", 4, 5]
    assert "_die_on: a worker process died" in caplog.text


@pytest.mark.parametrize("inherit", [True, False])
def test_fresh_workers_hold_none_of_the_locks_held_here(inherit: bool) -> None:
    # held here (another thread's, in a real case) as the processes start: a forked process
    # gets it held, for ever; a fresh one never sees it
    with _LOCK, worker_pool(2, None, _lock_is_free, inherit=inherit) as start:
        assert start is not None
        free = [start(b)() for b in range(4)]
    assert free == [not inherit] * 4


def test_fresh_workers_get_the_state_pickled() -> None:
    with worker_pool(2, {"offset": 1}, _plus_offset, inherit=False) as start:
        assert start is not None
        assert [start(n)() for n in range(5)] == [1, 2, 3, 4, 5]
