"""glibc heap settings for a server that moves images in ~1 MiB pieces.

Every GetImageFile chunk, and every image read, hashed or re-encoded, makes a
few short-lived buffers of about 1 MiB (the read, the protobuf message, its
serialisation, gRPC's copy). glibc serves those by mmap once they pass its
threshold, which it only raises after such a block is freed, and trims the
heap top back to the kernel past twice that: so each chunk costs fresh pages,
faulted in and zeroed, then returned. Measured on a 30 MB GetImageFile: about
half the throughput. Fixed thresholds keep blocks up to 4 MiB on the heap and
up to 8 MiB of free heap top (per arena) for reuse.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 4 * 1024 * 1024
TRIM_THRESHOLD = 8 * 1024 * 1024

log = logging.getLogger(__name__)


def tune() -> bool:
    """Apply the thresholds where the C library is glibc; elsewhere (macOS,
    musl) leave its allocator as it is. True when applied."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    log.debug("heap thresholds %s", "set" if applied else "left as they were")
    return applied
