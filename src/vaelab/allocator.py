"""glibc malloc settings that keep torch's CPU activation buffers in the process.

torch allocates CPU tensors with glibc's malloc. With glibc's default, dynamic thresholds, the
few-MiB temporaries of a decoder pass over thousands of rows are handed back to the kernel when
freed and page-faulted in again on the next pass: on the importance-sampled evaluation of
benchmarks/bench_eval.py that is about a million page faults and a third of the time per call.
Fixing the thresholds (the same as ``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=134217728``)
keeps up to 128 MiB of freed memory for reuse instead.

It changes the whole process's allocator, so the library never calls it on its own: the ``vaelab``
command line, which owns its process, does. In your own program, opt in with one line before
training or evaluating: ``vaelab.allocator.retain_freed_memory()``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform

_M_TRIM_THRESHOLD = -1  # mallopt parameter numbers from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 32 << 20  # blocks below this come from the heap, not fresh mmaps
_TRIM_THRESHOLD = 128 << 20  # free memory kept at the top of the heap before returning it


@functools.cache
def retain_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds once per process; True if they were set.

    A no-op (False) off glibc, and when the user set ``MALLOC_MMAP_THRESHOLD_`` or
    ``MALLOC_TRIM_THRESHOLD_`` (their choice wins) or ``VAELAB_KEEP_MALLOC=1``.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if os.environ.get("VAELAB_KEEP_MALLOC") == "1" or any(
        name in os.environ for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
    ):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
    )
