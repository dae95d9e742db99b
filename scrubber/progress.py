"""Progress on stderr while a run is going: the stage it is in and the time so far.

Shown only when stderr is a terminal and the run is not --quiet (the command line decides), and
removed when the run ends (transient), so logs and pipes never see it. It names stages only,
never data.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_ACTIVE: _Stages | None = None


class _Stages:
    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            SpinnerColumn(), TextColumn("scrubber: {task.description}"), BarColumn(bar_width=20),
            TextColumn("{task.completed}/{task.total} stages"), TimeElapsedColumn(),
            console=Console(stderr=True), transient=True, refresh_per_second=8,
        )
        self.task: Any = self.progress.add_task("starting", total=total)
        self.names: list[str] = []
        self.pid = os.getpid()  # forked workers inherit this object but must never draw

    def enter(self, name: str) -> None:
        self.names.append(name)
        self.progress.update(self.task, description=name)

    def leave(self, top_level: bool) -> None:
        self.names.pop()
        self.progress.update(self.task, description=self.names[-1] if self.names else "",
                             advance=1 if top_level else 0)


@contextmanager
def shown(enabled: bool, total: int) -> Iterator[None]:
    """While the block runs, stages entered with `entered` are shown (if enabled)."""
    global _ACTIVE
    if not enabled:
        yield
        return
    stages = _Stages(total)
    _ACTIVE = stages
    try:
        with stages.progress:
            yield
    finally:
        _ACTIVE = None


@contextmanager
def entered(name: str) -> Iterator[None]:
    """Show `name` as the current stage (nested stages show, then give back, their parent's)."""
    stages = _ACTIVE
    if stages is None or stages.pid != os.getpid():
        yield
        return
    top_level = not stages.names
    stages.enter(name)
    try:
        yield
    finally:
        stages.leave(top_level)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time a stage; with SCRUBBER_TIMINGS=1 print its name, seconds and this process's resident
    memory at its end to stderr (never data).
    While progress is shown (a terminal, not --quiet), the stage is named there."""
    started = time.perf_counter()
    with entered(name):
        yield
    if os.environ.get("SCRUBBER_TIMINGS") == "1":
        print(f"scrubber: {name}: {time.perf_counter() - started:.2f} s ({_resident_mib()})", file=sys.stderr)


def _resident_mib() -> str:
    try:  # Linux: resident pages are the second field
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return "memory unknown"
    return f"{pages * os.sysconf('SC_PAGE_SIZE') / 2**20:,.0f} MiB resident"
