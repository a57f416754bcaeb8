"""Quiet the lines TensorFlow's C++ code writes at import, without turning anything off.

TensorFlow prints "oneDNN custom operations are on ..." and "Could not find cuda drivers ..."
to file descriptor 2 while it loads, before absl logging is initialised, so TF_CPP_MIN_LOG_LEVEL
does not reach them. Setting TF_ENABLE_ONEDNN_OPTS=0 removes the first line by turning oneDNN
off, which halves training speed on CPU: instead, `quiet_import` points file descriptor 2 at
/dev/null for the import only. Python's own warnings and errors are unaffected.
"""

import contextlib
import importlib
import os
import sys


@contextlib.contextmanager
def native_stderr_silenced():
    """File descriptor 2 on /dev/null inside the block (nothing is silenced where it has none)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def quiet_import(name="tensorflow"):
    """`import name` with TensorFlow's load-time C++ log lines silenced; returns the module."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if name in sys.modules:
        return sys.modules[name]
    with native_stderr_silenced():
        return importlib.import_module(name)
