"""Memory of a process tree, as the fault tests and the benchmarks measure it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import psutil


def tree_pss(pid: int) -> int:
    """Proportional set size (bytes) of a process and all its descendants: shared pages (the
    libraries every Ray worker maps, the object store's shared memory) are counted once, not
    once per process as resident sizes would."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        with suppress(psutil.Error):
            total += proc.memory_full_info().pss
    return total


@contextmanager
def peak_pss(pid: int, every_s: float = 0.25) -> Iterator[list[int]]:
    """Samples ``tree_pss(pid)`` in a thread while the block runs; ``[peak bytes]`` afterwards.
    Every 0.25 s: reading every process's smaps is not free, and on a small machine a faster
    sampler takes CPU from what it measures."""
    peak, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], tree_pss(pid))
            stop.wait(every_s)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()
        peak[0] = max(peak[0], tree_pss(pid))
