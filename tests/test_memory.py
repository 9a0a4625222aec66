"""`release_freed_memory` gives freed heap pages back to the OS (where glibc is)."""

import ctypes
import sys

from wqmix.memory import release_freed_memory


def _resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1e6


def test_freed_heap_pages_leave_the_resident_set():
    if not sys.platform.startswith("linux"):  # no glibc: nothing to trim, and it says so
        assert release_freed_memory() is False
        return
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(4096) for _ in range(40_000)]  # 164 MB in blocks below glibc's mmap threshold
    for block in blocks:
        ctypes.memset(block, 1, 4096)
    for block in blocks:
        libc.free(block)
    held = _resident_mb()
    assert release_freed_memory()
    assert _resident_mb() < held - 100  # glibc kept the pages until asked
