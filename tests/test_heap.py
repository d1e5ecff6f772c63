"""Returning freed heap memory to the system (glibc's malloc_trim)."""

from __future__ import annotations

import platform

import psutil
import pytest

from newsmon.heap import release_free_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_freed_memory_goes_back_to_the_system() -> None:
    process = psutil.Process()
    # Many small blocks, not one large one: glibc serves large ones with mmap and returns
    # them at free; small ones stay in the arena, which is what the extraction workers leave.
    blocks = [bytearray(4000) for _ in range(25_000)]
    held = process.memory_info().rss
    keep = blocks[-1]  # the arena's top stays in use, so free() alone cannot shrink the heap
    del blocks
    before = process.memory_info().rss
    assert release_free_memory()
    after = process.memory_info().rss
    assert held - before < 50 * 2**20  # free() kept most of the 100 MB
    assert before - after > 50 * 2**20
    assert len(keep) == 4000
