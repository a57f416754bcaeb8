"""Errors a user can act on. Each carries one line that says what was wrong and what was expected.

The CLI prints `str(error)` on one line without a traceback (unless `--debug`) and exits 1.
`closest` makes the " Did you mean ...?" end of a message about an unknown name.
"""

import difflib


def closest(name, names):
    """A ' Did you mean ...?' suffix naming the closest known names, or the full list."""
    near = difflib.get_close_matches(str(name), list(names), n=3, cutoff=0.5)
    if near:
        return " Did you mean " + " or ".join(repr(n) for n in near) + "?"
    return " Known: " + ", ".join(sorted(names)) + "."


class ZooError(Exception):
    """Base class: a failure caused by input, files or the network, not by a bug."""


class DataError(ZooError):
    """A data file is missing, unreadable, not UTF-8, malformed, or lacks a named column."""


class CheckpointError(ZooError):
    """A checkpoint folder is missing, incomplete, corrupt, or names something not registered."""


class HubError(ZooError):
    """The Hub could not be reached, or the repository or revision does not exist."""


class UnknownNameError(ZooError, KeyError):
    """An unknown preset or recipe name; the message lists the closest known names."""

    def __str__(self):  # KeyError would quote the message.
        return str(self.args[0]) if self.args else ""
