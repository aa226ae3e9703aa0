"""Running an action in several threads at once, for the concurrency tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

THREADS = 8


def run_together(action: Callable[[int], Any], threads: int = THREADS) -> list[Any]:
    """Start `threads` calls at the same instant; collect each result or exception."""
    barrier = threading.Barrier(threads)
    outcomes: list[Any] = [None] * threads

    def worker(index: int) -> None:
        barrier.wait()
        try:
            outcomes[index] = action(index)
        except Exception as error:
            outcomes[index] = error

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=60)
    return outcomes
