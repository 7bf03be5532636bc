"""The glibc heap thresholds (heap.py): a chunk-sized buffer churn reuses the
heap instead of faulting fresh pages in every round. Each case runs in a fresh
interpreter so neither the test run's own heap nor a tuned one leaks across."""

import subprocess
import sys

CHURN = """
import resource, sys
from codex_image_server.runtime import heap
applied = heap.tune() if sys.argv[1] == "tuned" else None
def churn():
    for i in range(100):
        # About what one GetImageFile chunk holds at once: the read, the
        # message, its serialisation, gRPC's copy.
        held = [bytes([i % 256]) * (1024 * 1024 + 7 * k) for k in range(4)]
        del held
churn()  # the first round settles what glibc adjusts on its own
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
churn()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", CHURN, mode], capture_output=True, text=True, check=True
    ).stdout
    applied, count = out.split()
    return applied, int(count)


def test_tuned_heap_reuses_chunk_sized_buffers():
    applied, tuned = faults("tuned")
    _, plain = faults("plain")
    assert applied == "True"
    # Untuned, every round faults its ~4 MiB back in (about 1,000 pages);
    # tuned, the pages stay on the heap.
    assert plain > 20_000, (
        f"the churn no longer shows glibc's default cost ({plain} faults): retune the test"
    )
    assert tuned < plain / 10, f"tuned {tuned} faults vs untuned {plain}"


HOLES = """
import sys, time
from codex_image_server.runtime import heap
assert heap.tune()

def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

# What a big request leaves: 160 MiB of 64 KiB pieces freed between pieces
# still in use, so no heap top to trim.
pieces = [bytes([i % 256]) * (64 * 1024) for i in range(5000)]
for i in range(0, len(pieces), 2):
    pieces[i] = None
before = rss_mib()
heap.body_assembled(int(sys.argv[1]))
deadline = time.monotonic() + float(sys.argv[2])
while rss_mib() > before - 100 and time.monotonic() < deadline:
    time.sleep(0.01)
print(round(before - rss_mib()))
"""


def released_mib(body_size: int, wait_s: float) -> int:
    out = subprocess.run(
        [sys.executable, "-c", HOLES, str(body_size), str(wait_s)],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout)


def test_a_big_body_gives_the_holes_its_pieces_left_back_to_the_kernel():
    assert released_mib(8 * 1024 * 1024, 10) >= 100  # of the 160 MiB of holes


def test_a_small_body_leaves_the_heap_alone():
    assert released_mib(64 * 1024, 1) < 20  # waited the full second: nothing was trimmed
