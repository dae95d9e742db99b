"""Give freed heap back to the system between the stages of a large run."""

from __future__ import annotations

import ctypes
import ctypes.util


def release_memory() -> None:
    """glibc keeps freed memory for reuse; after a stage that freed hundreds of MB, hand it back so
    the next stage (or a forked worker) does not stack on top of it. A no-op elsewhere."""
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
