"""Give the heap's free memory back to the operating system.

lxml (libxml2) allocates each page's tree through glibc's malloc, which keeps what is freed in
its arenas: an extraction worker's RSS rose from 85 MB to 116 MB over the 175 sample pages
while Python's own heap grew by 4 MB, and `malloc_trim` took it back to 85 MB. On a C library
without malloc_trim (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from functools import cache

__all__ = ["release_free_memory"]


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Return freed heap memory to the system; False where the C library cannot."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
