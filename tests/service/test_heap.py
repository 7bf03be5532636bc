"""The glibc heap thresholds (heap.py): a chunk-sized buffer churn reuses the
heap instead of faulting fresh pages in every round. Each case runs in a fresh
interpreter so neither the test run's own heap nor a tuned one leaks across."""
import subprocess
import sys

CHURN = """
import resource, sys
from codex_image_server import heap
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
    out = subprocess.run([sys.executable, "-c", CHURN, mode], capture_output=True, text=True, check=True).stdout
    applied, count = out.split()
    return applied, int(count)


def test_tuned_heap_reuses_chunk_sized_buffers():
    applied, tuned = faults("tuned")
    _, plain = faults("plain")
    assert applied == "True"
    # Untuned, every round faults its ~4 MiB back in (about 1,000 pages);
    # tuned, the pages stay on the heap.
    assert plain > 20_000, f"the churn no longer shows glibc's default cost ({plain} faults): retune the test"
    assert tuned < plain / 10, f"tuned {tuned} faults vs untuned {plain}"
