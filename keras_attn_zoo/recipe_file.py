"""A recipe file (`recipes/*.toml`): reading and checking it, and the state of its run folder.

Plain Python and TOML only, no TensorFlow or Keras: `attn-zoo train` reads the recipe and answers
"already finished" for a completed run before anything heavy is imported, and `attn-zoo evaluate`
finds a preset's test data the same way.

    name = "bible_en_es_bahdanau"      seed = 1                     task = "translation"
    [recipe]      name = "translation", then the recipe's options (registry.RECIPE_OPTIONS)
    [data]        path, source, target, prefix, train_split, dev_split, test_split, format, build
    [tokenizer]   vocab_size (or source_vocab_size / target_vocab_size), model_type, shared
    [training]    TRAINING_DEFAULTS
    [evaluation]  the model's default search (SEARCH_OPTIONS: beam_size, alpha, ...)
    [output]      dir

Every key of every table is checked: a typo (`unitz = 16`) is an error naming the closest key,
never a silently different model.
"""

import json
import tomllib
from pathlib import Path

from keras_attn_zoo.errors import DataError
from keras_attn_zoo.recipes.registry import RECIPE_OPTIONS, RECIPES, closest

TRAINING_DEFAULTS = {
    "epochs": 20,
    "batch_size": 64,
    "learning_rate": 1e-3,
    "clipnorm": 1.0,
    "patience": 3,
    "max_source_length": 100,
    "max_target_length": 120,
    "time_budget_minutes": None,
    "max_train_examples": None,
    "bucket_by": "target",
    "init_from": None,
}
# The options of `Seq2Seq.search_options` (tests check they are its SEARCH_DEFAULTS): an
# [evaluation] table becomes the trained model's `search_defaults`.
SEARCH_OPTIONS = (
    "beam_size",
    "alpha",
    "beta",
    "min_length",
    "no_repeat_ngram_size",
    "max_length",
    "max_length_ratio",
    "max_length_offset",
    "ban_unk",
    "stepwise_coverage",
)
TOP_LEVEL = ("name", "seed", "task")
TABLE_KEYS = {
    "data": ("path", "source", "target", "prefix", "train_split", "dev_split", "test_split", "format", "build"),
    "tokenizer": ("vocab_size", "source_vocab_size", "target_vocab_size", "model_type", "shared"),
    "training": tuple(TRAINING_DEFAULTS),
    "evaluation": SEARCH_OPTIONS,
    "output": ("dir",),
}
SECTIONS = set(TOP_LEVEL) | {"recipe"} | set(TABLE_KEYS)


def _unknown(path, table, keys, known):
    """One line for the first unknown key of `table`, with the closest known ones."""
    unknown = sorted(set(keys) - set(known))
    if not unknown:
        return
    where = f"Recipe file {str(path)!r}: " + (f"[{table}] has unknown key" if table else "unknown key")
    raise DataError(f"{where} {unknown[0]!r}.{closest(unknown[0], known)}" + (
        f" (also unknown: {', '.join(map(repr, unknown[1:]))})" if unknown[1:] else ""
    ))


def load_recipe_file(path):
    """Read and check a recipe TOML file; relative data paths are resolved against its folder.

    Raises:
        DataError: the file is missing or not TOML, a required entry is missing, or any table
            holds a key nothing reads (the message names the closest known key).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Recipe file {str(path)!r} does not exist.")
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise DataError(f"Recipe file {str(path)!r} is not valid TOML: {error}") from None
    _unknown(path, None, spec, SECTIONS)
    for key in ("name", "recipe", "data"):
        if key not in spec:
            raise DataError(f"Recipe file {str(path)!r} lacks the required [{key}] entry.")
    for table in ("recipe", *TABLE_KEYS):
        if table in spec and not isinstance(spec[table], dict):
            raise DataError(f"Recipe file {str(path)!r}: {table} must be a table ([{table}]).")
    recipe_name = spec["recipe"].get("name") or spec.get("task", "translation")
    if recipe_name not in RECIPES:
        raise DataError(f"Recipe file {str(path)!r}: [recipe] name {recipe_name!r} is unknown.{closest(recipe_name, RECIPES)}")
    _unknown(path, "recipe", spec["recipe"], ("name", *RECIPE_OPTIONS[recipe_name]))
    for table, known in TABLE_KEYS.items():
        _unknown(path, table, spec.get(table, {}), known)
    data = spec["data"]
    for key in ("path", "source", "target"):
        if key not in data:
            raise DataError(f"Recipe file {str(path)!r}: [data] lacks {key!r}.")
    data_path = Path(data["path"])
    if not data_path.is_absolute():  # relative to the recipe file, wherever it is run from
        data_path = path.parent / data_path
    data["path"] = str(data_path)
    spec["training"] = {**TRAINING_DEFAULTS, **spec.get("training", {})}
    spec["file"] = str(path)
    return spec


def find_recipe(reference, model=None, package_root=None):
    """The recipe file behind a preset (or, for a loaded folder, the one named in its metadata), or None.

    A preset's `recipe` is relative to the repository root (the package's parent folder in a
    source checkout), else to the current folder. `model` (a loaded model, optional) adds the
    recipe file its checkpoint metadata names; `package_root` (default: this package's parent
    folder) is where a source checkout's `recipes/` lies. `attn-zoo evaluate` and the demo take a
    preset's test split from it.
    """
    from keras_attn_zoo.presets import list_presets

    package_root = Path(package_root) if package_root is not None else Path(__file__).resolve().parent.parent
    candidates = [
        root / preset["recipe"]
        for preset in list_presets()
        if preset["name"] == reference and preset.get("recipe")
        for root in (package_root, Path.cwd())
    ]
    recipe = (getattr(model, "zoo_metadata", None) or {}).get("recipe_file")
    if recipe:
        candidates.append(Path(recipe))
    return next((path for path in candidates if path.is_file()), None)


def recipe_task(spec):
    """The task of a checked recipe file: its [recipe] name's entry in the registry."""
    return RECIPES[spec["recipe"].get("name") or spec.get("task", "translation")][0]


def data_file(spec):
    """The recipe's data file; a DataError saying how to get it when it is missing."""
    path = Path(spec["data"]["path"])
    if path.is_file():
        return path
    build = spec["data"].get("build")
    how = (
        f"build it with: cd {Path(spec['file']).parent} && {build}"
        if build
        else "expected [data] path to name an existing file"
    )
    raise DataError(f"Data file {str(path)!r} of recipe {spec['file']!r} does not exist; {how}")


def run_folder(spec, run_dir=None):
    """The run folder: `run_dir`, else the recipe's [output] dir, else runs/<name>."""
    return Path(run_dir or spec.get("output", {}).get("dir") or Path("runs") / spec["name"])


def saved_state(run_dir):
    """The run's state.json as of the epoch the Keras backup holds (None before the first epoch).

    A kill between writing state.json and the backup must not leave the counters one epoch
    ahead of the weights, so the state of the backup's epoch is taken from `by_epoch`.
    """
    path = Path(run_dir) / "state.json"
    if not path.exists():
        return None
    saved = json.loads(path.read_text())
    by_epoch = saved.pop("by_epoch", {})
    backup = Path(run_dir) / "backup" / "training_metadata.json"
    epoch = str(json.loads(backup.read_text())["epoch"]) if backup.exists() else None
    return by_epoch.get(epoch, saved) if by_epoch else saved


def stop_reason(state, hp):
    """Why a run with `state` (from state.json) stops under the limits of `hp` (its [training]), or None.

    Read against the recipe as it is now, not as it was: a run stopped by its time budget, its
    epochs or its patience goes on when the recipe raises that limit and the same `attn-zoo train`
    runs again.
    """
    epochs = state.get("epochs") or 0
    if not epochs:
        return None
    if state.get("wait", 0) >= hp["patience"]:
        return f"early stopping after epoch {epochs}"
    budget = hp.get("time_budget_minutes")
    if budget and state.get("seconds", 0.0) >= 60 * budget:
        return f"time budget of {budget:g} min reached after epoch {epochs}"
    if epochs >= hp["epochs"]:
        return f"all {hp['epochs']} epochs done"
    return None


def finished_run(spec, run_dir=None):
    """`(checkpoint folder, why it stopped)` when the recipe's run is complete, else None.

    Complete means stopped (state.json says so) by a limit the recipe still sets (`stop_reason`).
    """
    folder = run_folder(spec, run_dir)
    state = saved_state(folder)
    checkpoint = folder / "checkpoint"
    if state and state.get("stopped") and checkpoint.is_dir():
        reason = stop_reason(state, spec["training"])
        if reason is not None:
            return checkpoint, reason
    return None
