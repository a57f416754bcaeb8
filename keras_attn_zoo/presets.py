"""The registry of named presets: trained models as plain data, one TOML file each.

A preset lives in `keras_attn_zoo/presets/<name>.toml` (package data) and says what a named model
is and where its weights are; `model_cards/<name>.md` is generated from it
(`python -m keras_attn_zoo.model_card --write`). Keys:

    name         the preset's name, the file's stem
    task         "translation", "summarization" or "captioning" ("image-to-text" is read as captioning)
    recipe       the recipe file that trains it, relative to the repository root
    attention    the recipe's attention option ("bahdanau", "luong_general", "none", ...)
    description  one paragraph: what the model does
    license      the license of the weights (an SPDX id as the Hub spells it, e.g. "apache-2.0")
    hub_repo     "namespace/name" of the model repository on the Hugging Face Hub
    hub_revision the branch, tag or commit of `hub_repo` to load (optional; default: main)
    checkpoint   the folder under `keras_attn_zoo/checkpoints/` bundled with the package (optional)
    example      an input to show in usage examples (optional; for captioning, an image file name)
    paper        a `model_card.PAPERS` key naming the model's paper when it is not its attention's (optional)
    figure       a figure for the card, relative to model_cards/ (optional)
    limitations  what the model cannot do, one sentence each (optional)
    [data]       the training data: dataset, dataset_name, source_language, target_language,
                 source_text, target_text, license, origin, rebuild, split
    [metrics]    measured scores only, written by `update_metrics` (absent until measured)

The [metrics] table is flat. A score is a number keyed `<metric>_<decoding>` (`bleu_greedy`,
`chrf_beam5`, `rouge1_greedy`: sacreBLEU BLEU and chrF, ROUGE F1, on a 0-100 scale; decoding
"greedy" or "beam<N>") with `split` naming the split scored, or `<split>_<metric>_<decoding>`
(`test_bleu_beam5`); `sentences` (or `<split>_examples`) counts the sentences, and
`bleu_signature` / `chrf_signature` hold sacreBLEU's signatures. The model card's `model-index`
reports exactly these scores; any other key is listed in the card as it is.

Reading presets imports neither TensorFlow nor Keras, so `attn-zoo list` stays fast.
"""

import importlib.resources
import math
import re
import tomllib
from pathlib import Path

from keras_attn_zoo.errors import DataError, UnknownNameError

TASKS = ("translation", "summarization", "captioning", "image-to-text")
REQUIRED_KEYS = ("name", "task", "recipe", "attention", "description", "license", "hub_repo", "data")
PRESETS_DIR = "presets"
CHECKPOINTS_DIR = "checkpoints"
METRICS_TABLE = "metrics"

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_METRICS_HEADER = re.compile(r"^\[metrics\][ \t]*(#.*)?$", re.MULTILINE)
_ANY_HEADER = re.compile(r"^\[", re.MULTILINE)


def _package_files():
    return importlib.resources.files("keras_attn_zoo")


def _preset_paths():
    """{name: path of its TOML file}, sorted by name."""
    folder = _package_files().joinpath(PRESETS_DIR)
    paths = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".toml"):
            paths[entry.name[: -len(".toml")]] = entry
    return dict(sorted(paths.items()))


def _read(name, path):
    try:
        preset = tomllib.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise DataError(f"Preset file {str(path)!r} is not valid TOML: {error}") from None
    missing = [key for key in REQUIRED_KEYS if key not in preset]
    if missing:
        raise DataError(f"Preset file {str(path)!r} lacks {missing}; expected the keys {list(REQUIRED_KEYS)}.")
    if preset["name"] != name:
        raise DataError(f"Preset file {str(path)!r} has name={preset['name']!r}; expected {name!r}, its file name.")
    if preset["task"] not in TASKS:
        raise DataError(f"Preset file {str(path)!r}: Received: task={preset['task']!r}; expected one of {TASKS}.")
    _check_metrics(preset.get(METRICS_TABLE, {}), where=f"Preset file {str(path)!r}")
    return preset


def preset_names():
    """The names of all presets, sorted."""
    return list(_preset_paths())


def list_presets():
    """Every preset as a dict (a copy: changing it changes nothing), sorted by name."""
    return [_read(name, path) for name, path in _preset_paths().items()]


def get_preset(name):
    """The preset called `name`, as a dict.

    Raises:
        UnknownNameError: no preset has that name; the message names the closest ones.
    """
    paths = _preset_paths()
    if name not in paths:
        from keras_attn_zoo.recipes.registry import closest

        raise UnknownNameError(f"Unknown preset {name!r}." + closest(name, paths))
    return _read(name, paths[name])


def bundled_checkpoint(name):
    """The checkpoint folder shipped inside the package for preset `name`, or None.

    None when the preset names no `checkpoint`, or when its folder is not in this installation
    (then `from_pretrained` downloads the preset's `hub_repo`). Found with `importlib.resources`,
    so it works from an installed wheel as well as from a source checkout.
    """
    folder = get_preset(name).get("checkpoint")
    if not folder:
        return None
    resource = _package_files().joinpath(CHECKPOINTS_DIR).joinpath(folder)
    if not isinstance(resource, Path):  # a zipped package: its folders cannot be read as files
        return None
    return resource if resource.is_dir() else None


def update_metrics(name, metrics, merge=False):
    """Rewrite the [metrics] table of preset `name` with measured scores; returns the new preset.

    Only the [metrics] table changes: every other line of the file, comments included, stays.

    Args:
        name: a preset name.
        metrics: a flat dict of measured values: numbers (finite), strings or booleans, keyed by
            bare TOML keys (see the module docstring for the names). An empty dict removes the table.
        merge: keep the keys of the current table that `metrics` does not set.

    Raises:
        UnknownNameError: no preset has that name.
        ValueError: a key or value cannot go in the table.
    """
    preset = get_preset(name)
    path = _preset_paths()[name]
    metrics = {key: _plain(value) for key, value in dict(metrics).items()}
    if merge:
        metrics = {**preset.get(METRICS_TABLE, {}), **metrics}
    _check_metrics(metrics, where=f"Received: metrics for {name!r}", error=ValueError)
    text = path.read_text(encoding="utf-8")
    header = _METRICS_HEADER.search(text)
    if header:
        following = _ANY_HEADER.search(text, header.end())
        while following and text.startswith("[metrics.", following.start()):
            following = _ANY_HEADER.search(text, following.end())
        rest = text[following.start() :] if following else ""
        text = text[: header.start()].rstrip("\n") + "\n" + ("\n" + rest if rest else "")
    if metrics:
        text = text.rstrip("\n") + "\n\n" + _metrics_toml(metrics)
    updated = tomllib.loads(text)  # never write a file that does not read back as written
    if updated.get(METRICS_TABLE, {}) != dict(metrics) or {k: v for k, v in updated.items() if k != METRICS_TABLE} != {
        k: v for k, v in preset.items() if k != METRICS_TABLE
    }:
        raise ValueError(f"Rewriting the [metrics] table of {str(path)!r} would change other data; nothing written.")
    path.write_text(text, encoding="utf-8")
    return updated


def _plain(value):
    """A NumPy scalar (what scores often are) as the Python value it holds."""
    if not isinstance(value, (str, bytes)) and hasattr(value, "item") and getattr(value, "shape", None) == ():
        return value.item()
    return value


def _metrics_toml(metrics):
    lines = ["[metrics]", "# Measured scores; written by keras_attn_zoo.presets.update_metrics."]
    lines += [f"{key} = {_toml_value(value)}" for key, value in metrics.items()]
    return "\n".join(lines) + "\n"


def _toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    # A JSON string with non-ASCII kept is a valid TOML basic string: same escapes (\" \\ \n \uXXXX).
    import json

    return json.dumps(value, ensure_ascii=False)


def _check_metrics(metrics, where, error=DataError):
    if not isinstance(metrics, dict):
        raise error(f"{where}: [metrics] is a {type(metrics).__name__}; expected a table of measured values.")
    for key, value in metrics.items():
        if not isinstance(key, str) or not _BARE_KEY.match(key):
            raise error(f"{where}: metric name {key!r} is not a bare TOML key (letters, digits, '_' and '-').")
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not (is_number or isinstance(value, (str, bool))):
            raise error(
                f"{where}: metric {key!r} is a {type(value).__name__}; expected a number, a string or a boolean."
            )
        if is_number and not math.isfinite(value):
            raise error(f"{where}: metric {key!r} is {value}; expected a finite number.")
