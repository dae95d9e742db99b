"""Give freed heap back to the system between the stages of a large run."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from typing import Any


@functools.cache
def libc() -> Any:
    """The C library, looked up once (find_library runs ldconfig in a subprocess)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def release_memory() -> None:
    """glibc and Arrow's allocator (mimalloc) keep freed memory for reuse; after a stage that freed
    hundreds of MB, hand it back so the next stage (or a forked worker) does not stack on top of it.
    A no-op elsewhere."""
    arrow = sys.modules.get("pyarrow")
    if arrow is not None:
        arrow.default_memory_pool().release_unused()
    trim = getattr(libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)
