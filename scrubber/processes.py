"""Forked worker processes that end with the run."""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor

from scrubber.memory import libc

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def fork_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of `workers` forked processes (they share this process's memory copy-on-write), each
    ended by the kernel if this process dies: killed with SIGKILL, by a timeout or by the
    out-of-memory killer, it would otherwise leave its idle workers waiting for work forever."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"),
                               initializer=_end_with_parent, initargs=(os.getpid(),))


def _end_with_parent(parent: int) -> None:
    """Linux only (a no-op elsewhere). The pool forks its workers from the thread that submits
    first, this module's callers' main thread, whose end is the process's end."""
    prctl = getattr(libc(), "prctl", None)
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
