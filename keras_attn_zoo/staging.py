"""Folders written before they are used: staged beside their final place, or scratch ones.

`staged_folder`: an interrupted save (a crash, `kill -9`, a full disk) never leaves a half-written
checkpoint or SavedModel where a reader would take it for a whole one.
`scratch_folder`: a temporary folder (the checkpoint `push` uploads) that no exit leaves behind.
"""

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


@contextlib.contextmanager
def staged_folder(folder):
    """Yield an empty staging folder beside `folder`; on success it replaces `folder` whole."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        yield staging
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # another user's process, or a platform without signal 0: leave it
    return True


@contextlib.contextmanager
def scratch_folder(prefix):
    """Yield a new temporary folder `<tmp>/<prefix><pid>-xxxx`, removed on any exit.

    An exception, Ctrl-C or SIGTERM (the command line turns it into SystemExit) runs the cleanup;
    `kill -9` cannot, so folders of `prefix` left by processes that no longer exist are removed
    first.
    """
    root = Path(tempfile.gettempdir())
    for stale in root.glob(f"{prefix}*-*"):
        pid = stale.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=root))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
