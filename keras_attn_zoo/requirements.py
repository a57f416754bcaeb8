"""What a command needs installed, checked before it starts working.

The packages behind the documented commands (`sentencepiece` to train tokenizers, `sacrebleu` to
score, `matplotlib` to draw) are dependencies of keras-attn-zoo, so `pip install keras-attn-zoo`
brings them. An environment can still lack one (installed with `--no-deps`, or uninstalled
since): `require` finds that out without importing anything, before a model is loaded or a
test set translated, and says which `pip install` line fixes it.
"""

import importlib.util

from keras_attn_zoo.errors import ZooError

# import name -> the name pip installs it under
PIP_NAMES = {
    "sentencepiece": "sentencepiece",
    "sacrebleu": "sacrebleu",
    "matplotlib": "matplotlib",
    "rouge_score": "rouge-score",
}


class MissingDependencyError(ZooError, ImportError):
    """A package a command needs is not installed; the message holds the `pip install` line."""


def missing(*modules):
    """The modules of `modules` that cannot be imported (found without importing them)."""
    absent = []
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            absent.append(module)
    return absent


def require(*modules, purpose):
    """Raise `MissingDependencyError` naming `purpose` and the pip line unless all `modules` import."""
    absent = missing(*modules)
    if absent:
        names = " ".join(PIP_NAMES.get(module, module) for module in absent)
        raise MissingDependencyError(
            f"{purpose} needs {', '.join(f'`{m}`' for m in absent)}, which is not installed; "
            f"install it with: pip install {names}"
        )
