"""What the operating system says about this process and its data directory: resident memory,
file descriptors, and the bytes the store's files take on disk. Each call reads the system afresh
(on Linux, from /proc); none is for the hot path.
"""

from __future__ import annotations

import os
import resource
import time

_IMPORTED_AT = time.time()


def start_time() -> float:
    """When the process started, in seconds since the epoch (where /proc is not there, about when
    the broker was imported)."""
    try:
        with open("/proc/self/stat", "rb") as stat:
            # After the command name in parentheses, `starttime` (field 22) is the 20th field.
            ticks = int(stat.read().rpartition(b")")[2].split()[19])
        with open("/proc/stat", "rb") as system:
            boot = next(int(line.split()[1]) for line in system if line.startswith(b"btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return _IMPORTED_AT
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def resident_memory_bytes() -> int:
    """The process's resident set size now (its peak where /proc is not there)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def max_fds() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def directory_size_bytes(path: str) -> int:
    """Bytes the files directly in `path` take on disk: allocated blocks, so that LMDB's sparse
    map counts what it holds, not what it may grow to."""
    total = 0
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.is_file(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_blocks * 512
    return total
