"""What `pip install .` brings: everything the documented commands need."""

import re
import tomllib
from pathlib import Path

import pytest

from keras_attn_zoo.requirements import PIP_NAMES, MissingDependencyError, missing, require

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def requirement_names(requirements):
    return {re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower() for requirement in requirements}


def test_command_dependencies_are_installed_by_default():
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    assert set(PIP_NAMES.values()) <= requirement_names(project["dependencies"])


def test_require_names_the_pip_line(monkeypatch):
    import sys

    assert missing("json", "no_such_module_xyz") == ["no_such_module_xyz"]
    monkeypatch.setitem(sys.modules, "sacrebleu", None)
    with pytest.raises(MissingDependencyError) as error:
        require("sacrebleu", "json", purpose="Scoring")
    assert str(error.value) == "Scoring needs `sacrebleu`, which is not installed; install it with: pip install sacrebleu"
    assert require("json", purpose="Reading") is None  # installed: no error
