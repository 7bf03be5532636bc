"""glibc heap settings for a server that moves images in ~1 MiB pieces.

Every GetImageFile chunk, and every image read, hashed or re-encoded, makes a
few short-lived buffers of about 1 MiB (the read, the protobuf message, its
serialisation, gRPC's copy). glibc serves those by mmap once they pass its
threshold, which it only raises after such a block is freed, and trims the
heap top back to the kernel past twice that: so each chunk costs fresh pages,
faulted in and zeroed, then returned. Measured on a 30 MB GetImageFile: about
half the throughput. Fixed thresholds keep blocks up to 4 MiB on the heap and
up to 8 MiB of free heap top (per arena) for reuse.

The other side of that: a big request body arrives in such pieces too, and
once they are joined and freed they leave holes glibc keeps resident. So
after a body of 8 MiB or more, `body_assembled` has the free pages handed
back (malloc_trim, on a thread of its own).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

from codex_image_server.runtime.logs import log

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 4 * 1024 * 1024
TRIM_THRESHOLD = 8 * 1024 * 1024

# A request body at least this large was assembled from many small pieces.
BIG_BODY = 8 * 1024 * 1024

_malloc_trim = None


def tune() -> bool:
    """Apply the thresholds where the C library is glibc; elsewhere (macOS,
    musl) leave its allocator as it is. True when applied."""
    global _malloc_trim
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt, malloc_trim = libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    malloc_trim.argtypes = (ctypes.c_size_t,)
    applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    if applied and _malloc_trim is None:
        _malloc_trim = malloc_trim
        threading.Thread(target=_trimmer, name="heap-trim", daemon=True).start()
    log("heap.thresholds", level="debug", applied=applied)
    return applied


_trim_wanted = threading.Event()


def _trimmer() -> None:
    # One thread, so requests arriving together ask for one trim, not one
    # each; ctypes lets go of the GIL for the call (tens of ms on a
    # fragmented heap), so neither the loop nor other threads wait on it.
    while True:
        _trim_wanted.wait()
        _trim_wanted.clear()
        if _malloc_trim is not None:  # set before this thread starts
            _malloc_trim(0)


def body_assembled(size: int) -> None:
    """A request body of `size` bytes is now one buffer, and the pieces it
    came in (gRPC's slices, aiohttp's chunks: each below the mmap threshold,
    so on the heap, interleaved with other requests') are free. glibc keeps
    such holes resident; four 80 MB requests arriving at once would hold
    their pieces and their bodies both. Past BIG_BODY, the free pages go
    back to the kernel, on the trimmer thread."""
    if _malloc_trim is not None and size >= BIG_BODY:
        _trim_wanted.set()
