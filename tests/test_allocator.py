"""`keras_attn_zoo.allocator.keep_freed_memory`: freed blocks are reused, not paged in afresh.

Each case runs in a fresh Python process (the setting is process-wide and cannot be undone) and
counts the page faults of 20 rounds of malloc, write and free of a 64 MB block, the pattern of a
training step's largest buffers.
"""

import os
import subprocess
import sys

import pytest

from keras_attn_zoo.allocator import available

pytestmark = pytest.mark.skipif(not available(), reason="mallopt is glibc's")

ROUNDS = 20
BLOCK = 64 << 20
PAGES = BLOCK // os.sysconf("SC_PAGE_SIZE")

FAULTS = f"""
import ctypes, resource
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range({ROUNDS}):
    block = libc.malloc({BLOCK})
    ctypes.memset(block, 1, {BLOCK})
    libc.free(block)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(prelude, **environment):
    """Page faults of the malloc rounds in a fresh process, after running `prelude`."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    for name in ("MALLOC_ARENA_MAX", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "LD_PRELOAD", "GLIBC_TUNABLES"):
        env.pop(name, None)
    env.update(environment)
    result = subprocess.run(
        [sys.executable, "-c", prelude + FAULTS], capture_output=True, text=True, env=env, timeout=120, check=True
    )
    return int(result.stdout.split()[-1])


def test_freed_blocks_are_reused_instead_of_faulted_in_again():
    default = faults("")
    kept = faults("from keras_attn_zoo.allocator import keep_freed_memory\nassert keep_freed_memory()\n")
    assert default >= ROUNDS * PAGES // 2  # glibc's defaults: every round's block comes back as new pages
    assert kept <= 2 * PAGES  # kept: the pages of the first round, reused by the next ones


def test_the_environment_form_sets_the_same():
    from keras_attn_zoo.allocator import GLIBC_TUNABLES

    assert faults("", GLIBC_TUNABLES=GLIBC_TUNABLES) <= 2 * PAGES


def test_the_console_script_sets_it_before_any_command():
    prelude = (
        "import sys\nsys.argv = ['attn-zoo', '--version']\nfrom keras_attn_zoo.cli import main\n"
        "try:\n    main()\nexcept SystemExit as stop:\n    assert stop.code in (0, None)\n"
    )
    assert faults(prelude) <= 2 * PAGES
