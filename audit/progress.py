"""Progress reporting for long work, one shape everywhere.

A progress factory takes a label and an expected total (or None) and gives a context manager
yielding an "advance by n" callback. Commands pass :func:`terminal_bar` (a tqdm bar on a
terminal, nothing when stderr is not one); library calls default to :func:`no_progress`; the
dashboard passes its own.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

Advance = Callable[[int], None]
ProgressFactory = Callable[[str, int | None], AbstractContextManager[Advance]]


@contextmanager
def no_progress(_label: str, _total: int | None) -> Iterator[Advance]:
    yield lambda _n: None


@contextmanager
def terminal_bar(label: str, total: int | None, unit: str = "msg") -> Iterator[Advance]:
    from tqdm import tqdm  # only commands that show a bar pay for the import

    with tqdm(
        total=total, desc=f"{label:<13}", unit=unit, disable=None, file=sys.stderr, leave=True
    ) as bar:

        def advance(n: int) -> None:
            bar.update(n)

        yield advance
