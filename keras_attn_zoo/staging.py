"""Write a folder next to its final place and move it in at the end.

An interrupted save (a crash, `kill -9`, a full disk) never leaves a half-written checkpoint or
SavedModel where a reader would take it for a whole one.
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
