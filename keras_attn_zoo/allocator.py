"""Freed memory kept for reuse: glibc's malloc set for training on the CPU.

A TensorFlow training step of the zoo's models allocates and frees many large buffers: the logits
(batch x steps x vocabulary floats, 80 MB for a batch of 64 verses), their gradients, the decoder
loop's per-step tensors. With its defaults glibc's malloc gives blocks above its mmap threshold
back to the kernel when they are freed, and the threads' arenas trim their heaps, so every step
gets its buffers as fresh pages again: about 100,000 page faults a step for the peer-sized model
of `benchmarks/peer_training.py`, each a trip into the kernel and a zero-filled page.
`keep_freed_memory` makes malloc keep what is freed (one arena, no mmap, no trimming): about 1,000
page faults a step; training 1.00-1.09x as fast on TensorFlow and 1.11-1.29x on JAX
(`benchmarks/peer_training.py --compare-allocator`), with the same peak memory.

The cost: the process holds on to the most memory it has used until it exits (it does anyway while
training, step after step). `attn-zoo` sets it for every command; call it yourself before training
with `model.fit`, best before TensorFlow or JAX start their threads (before the first model is
built), or start Python with the environment variable `GLIBC_TUNABLES` set to `GLIBC_TUNABLES`
here. Written by hand: neither TensorFlow, JAX nor Keras sets the C allocator (TensorFlow's
performance guide suggests preloading tcmalloc, which needs a system package and a preload before
Python starts); only glibc has `mallopt`, so elsewhere (macOS, Windows, musl) this does nothing.
"""

import ctypes
import platform

# glibc's malloc.h: mallopt parameters.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_SETTINGS = (
    (_M_ARENA_MAX, "arena_max", 1),  # one arena: threads' arenas trim (and unmap) their heaps on their own terms
    (_M_MMAP_MAX, "mmap_max", 0),  # no block is its own mapping, to be unmapped when freed
    (_M_TRIM_THRESHOLD, "trim_threshold", 2**31 - 1),  # the heap's free top is kept (mallopt takes an int)
)
# The same settings for a process started from outside Python: GLIBC_TUNABLES=<this>.
GLIBC_TUNABLES = ":".join(f"glibc.malloc.{name}={value}" for _, name, value in _SETTINGS)


def available():
    """Whether this process's C library is glibc, whose malloc `keep_freed_memory` sets."""
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def keep_freed_memory():
    """Sets glibc's malloc to keep freed memory for reuse (see the module). Returns whether it did:
    False where the C library is not glibc."""
    if not available():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return all(mallopt(parameter, value) == 1 for parameter, _, value in _SETTINGS)
