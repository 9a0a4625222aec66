"""`release_freed_memory` gives freed heap pages back to the OS (where glibc is)."""

import subprocess
import sys

from wqmix.memory import release_freed_memory

# In a fresh interpreter, so that the answer does not depend on the tests that ran before in the
# same worker: there the heap is large and fragmented, and the blocks may land in pages that other
# live allocations share. One block kept live above them pins them below the heap's top, where
# glibc cannot give them back by itself (free() shrinks only the top); it keeps
# them resident until malloc_trim, as it keeps a compiler's freed temporaries.
FREE_THEN_TRIM = """
import ctypes
from wqmix.memory import release_freed_memory

def resident_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1e6

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
blocks = [libc.malloc(4096) for _ in range(40_000)]  # 164 MB in blocks below glibc's mmap threshold
pin = libc.malloc(64)
while pin < max(blocks):  # a small block may come from a hole below them: take one from above
    pin = libc.malloc(64)
for block in blocks:
    ctypes.memset(block, 1, 4096)
for block in blocks:
    libc.free(block)
held = resident_mb()
released = release_freed_memory()
print(held, resident_mb(), released)
"""


def test_freed_heap_pages_leave_the_resident_set():
    if not sys.platform.startswith("linux"):  # no glibc: nothing to trim, and it says so
        assert release_freed_memory() is False
        return
    out = subprocess.run([sys.executable, "-c", FREE_THEN_TRIM], capture_output=True, text=True, check=True)
    held, after, released = out.stdout.split()
    assert released == "True"
    assert float(after) < float(held) - 100  # glibc kept the pages until asked
