"""SIGTERM as a clean stop: the command line's handler, and the request a training loop checks.

`attn-zoo` turns SIGTERM (`kill`, `timeout`, a job scheduler) into `SystemExit(EXIT_CODE)`, which
unwinds the main thread so that temporary folders and staged saves are cleaned up. Python runs a
signal handler between two bytecodes of the main thread, wherever that is: inside a destructor
(`__del__`, run by the garbage collector at any allocation) the exception is printed as
"Exception ignored" and lost, and the program goes on. So the request is also kept here, and
`attn-zoo train` checks it after every batch (`keras_attn_zoo.training.StopWhenAsked`): a lost
exception cannot let a training run on to its end.
"""

import signal
import threading

EXIT_CODE = 128 + signal.SIGTERM  # the shell's code for a process ended by SIGTERM
_requested = threading.Event()


def handle_sigterm():
    """Install the handler; from a thread other than the main one signals are left alone (False)."""
    try:
        signal.signal(signal.SIGTERM, _terminated)
    except (ValueError, OSError):
        return False
    return True


def _terminated(signum, frame):
    _requested.set()
    raise SystemExit(EXIT_CODE)


def raise_if_requested():
    """Raise `SystemExit(EXIT_CODE)` if a SIGTERM came (its own exception may have been lost)."""
    if _requested.is_set():
        raise SystemExit(EXIT_CODE)
