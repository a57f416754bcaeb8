"""The checkpoint folder: what a trained model is on disk, on the Hub and inside the package.

    config.json        {"format", "class", "task", "recipe", "config": the model's get_config()}
    model.weights.h5   Keras weights (HDF5: no pickle, no code)
    assets/            the tokenizers (SentencePiece .model files)
    metadata.json      package and Keras versions, parameter count, training data, metrics,
                       and the sha256 of every other file
    README.md          the model card

Loading never runs code from a checkpoint: the class must be one of `MODEL_CLASSES`, the config
may hold only that class's constructor arguments with plain JSON values, and every file's sha256
must match metadata.json before any weight is read, so a truncated or corrupted download fails
with a clear error instead of giving a silently wrong model.

A checkpoint may come from anyone, so loading also refuses, before anything is allocated:
- a config whose model would have more than `model_size.MAX_PARAMETERS` weights, or more than
  its weights file can hold (4 bytes a weight): `units = 10000000` is one line, not an OOM kill;
- a file name that leaves the folder (`../x`, `/etc/passwd`), and any file read that is not a
  regular file inside the folder (a symlink out of it, a FIFO, a device). In a Hugging Face cache
  snapshot (`.../models--org--name/snapshots/<sha>/`) the files are huggingface_hub's symlinks to
  `.../models--org--name/blobs/`: those may point there, and nowhere else.

One folder for both loaders: config.json also carries the Keras serialization keys (`module`,
`class_name`, `registered_name` beside the shared `config`), so `keras.saving.load_model` reads
a checkpoint folder, or a Hub repository made by `attn-zoo push`, once `keras_attn_zoo.models` is
imported (which registers the class). Keras' loader skips the hash and size checks: prefer
`keras_attn_zoo.from_pretrained` for models you did not make.
"""

import hashlib
import inspect
import json
import os
import stat
from pathlib import Path, PurePosixPath, PureWindowsPath

from keras_attn_zoo.errors import CheckpointError, DataError
from keras_attn_zoo.staging import staged_folder

FORMAT = "keras-attn-zoo/1"
# In config.json for people who find the folder first: Keras' own loader, when keras_attn_zoo is
# not imported, fails with "Could not locate class 'Seq2Seq'" and prints the whole config, this line
# included, so its one error line says how to load the model.
LOAD_WITH = "pip install keras-attn-zoo; then keras_attn_zoo.from_pretrained(...), or import keras_attn_zoo before keras.saving.load_model(...)"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
CARD_FILE = "README.md"
ASSETS_DIR = "assets"


def _model_classes():
    from keras_attn_zoo.models.captioner import Captioner
    from keras_attn_zoo.models.seq2seq import Seq2Seq

    return {"Seq2Seq": Seq2Seq, "Captioner": Captioner}


def checkpoint_folder(folder):
    """A checkpoint folder, given it or the run folder holding it (`runs/NAME/checkpoint`)."""
    folder = Path(folder)
    return folder / "checkpoint" if (folder / "checkpoint").is_dir() else folder


def copy_tokenizers(checkpoint, folder, names):
    """Copy a checkpoint's tokenizer assets `names` into `folder` (a fine-tune's run), unless there already."""
    import shutil

    if all((Path(folder) / name).exists() for name in names):
        return
    if not all((Path(checkpoint) / ASSETS_DIR / name).is_file() for name in names):
        raise DataError(f"init_from: {str(checkpoint)!r} is not a checkpoint with tokenizers; train that recipe first.")
    Path(folder).mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(Path(checkpoint) / ASSETS_DIR / name, Path(folder) / name)


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(
    model, folder, task="translation", recipe="translation", metadata=None, card=None, weights_dtype="float32"
):
    """Write `model` (with its tokenizers) to `folder` in the checkpoint format.

    The folder is staged beside its final place and moved in whole (`staging.staged_folder`).
    `weights_dtype="float16"` stores the weights at half the size (a bundled preset whose
    float32 file would pass the 16 MB a file may have); Keras casts them back to the model's
    float32 variables at load, and metadata.json records the storage dtype. Check what it costs
    by evaluating the saved checkpoint. Returns the folder's Path.
    """
    if weights_dtype not in ("float32", "float16"):
        raise ValueError(f"Received: weights_dtype={weights_dtype!r}; expected 'float32' or 'float16'.")
    import keras

    import keras_attn_zoo

    folder = Path(folder)
    with staged_folder(folder) as staging:
        (staging / ASSETS_DIR).mkdir()
        model.save_assets(str(staging / ASSETS_DIR))
        model.save_weights(str(staging / WEIGHTS_FILE))
        if weights_dtype == "float16":
            _store_float16(staging / WEIGHTS_FILE)
        config = {
            "format": FORMAT,
            "class": type(model).__name__,
            "task": task,
            "recipe": recipe,
            "load_with": LOAD_WITH,
            **_keras_keys(model),
            "config": model.get_config(),
        }
        _write_json(staging / CONFIG_FILE, config)
        if card is not None:
            (staging / CARD_FILE).write_text(card, encoding="utf-8")
        meta = dict(metadata or {})
        meta.update(
            {
                "keras_attn_zoo_version": keras_attn_zoo.__version__,
                "keras_version": keras.__version__,
                "backend": keras.backend.backend(),
                "parameters": int(model.count_params()),
                "weights_dtype": weights_dtype,
                "files": _hashes(staging),
            }
        )
        _write_json(staging / METADATA_FILE, meta)
    return folder


def _store_float16(path):
    """Rewrite a Keras .weights.h5 file with every float32 array as float16 (names, layout and attributes kept).

    Written to a new file and moved over the old one: HDF5 does not give back the space of a
    deleted array, so rewriting in place would grow the file.
    """
    import h5py
    import numpy as np

    def copy(source, target):
        target.attrs.update(dict(source.attrs))
        for key, item in source.items():
            if isinstance(item, h5py.Group):
                copy(item, target.create_group(key))
            else:
                data = item[()]
                if isinstance(data, np.ndarray) and data.dtype == np.float32:
                    data = data.astype(np.float16)
                target.create_dataset(key, data=data).attrs.update(dict(item.attrs))

    path = Path(path)
    smaller = path.with_name(path.name + ".float16")
    with h5py.File(path, "r") as source, h5py.File(smaller, "w") as target:
        copy(source, target)
    os.replace(smaller, path)


def _keras_keys(model):
    """What `keras.saving.load_model` needs besides `config` to rebuild the model from a folder."""
    import keras

    serialized = keras.saving.serialize_keras_object(model)
    return {key: serialized[key] for key in ("module", "class_name", "registered_name") if key in serialized}


def _hashes(folder):
    return {
        str(path.relative_to(folder)): file_sha256(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name not in (METADATA_FILE, CARD_FILE)
    }


def _write_json(path, data):
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_json(path):
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint file {str(path)!r} is missing.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"Checkpoint file {str(path)!r} is not valid JSON ({error}).") from None


def _allowed_roots(folder):
    """The real folders a checkpoint's files may live in: the folder, and in a Hugging Face cache
    snapshot its repository's `blobs/` (huggingface_hub links every snapshot file there)."""
    real = Path(os.path.realpath(folder))
    roots = [real]
    if real.parent.name == "snapshots" and (real.parent.parent / "blobs").is_dir():
        roots.append(Path(os.path.realpath(real.parent.parent / "blobs")))
    return roots


def safe_file(folder, name, roots=None):
    """The path of checkpoint file `name` (relative, '/'-separated) after checking it stays inside.

    Raises CheckpointError unless `name` is a relative path without '..', and the file it leads to,
    symlinks followed, is a regular file inside the folder (or in a cache snapshot's blobs/).
    """
    folder = Path(folder)
    where = f"Checkpoint file name {name!r} in {str(folder)!r}"
    if not isinstance(name, str) or not name or "\0" in name:
        raise CheckpointError(f"{where} is not a file name; expected a relative path inside the folder.")
    parts = PurePosixPath(name).parts
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute() or PureWindowsPath(name).drive:
        raise CheckpointError(f"{where} is an absolute path; expected a relative path inside the folder.")
    if ".." in parts or ".." in PureWindowsPath(name).parts:
        raise CheckpointError(f"{where} contains '..'; expected a relative path inside the folder.")
    path = folder.joinpath(*parts)
    if not os.path.lexists(path):
        raise CheckpointError(f"Checkpoint file {str(path)!r} is missing.")
    real = Path(os.path.realpath(path))
    if not any(real.is_relative_to(root) for root in roots or _allowed_roots(folder)):
        raise CheckpointError(
            f"Checkpoint file {str(path)!r} is a link to {str(real)!r}, outside the checkpoint; "
            "expected a regular file inside the folder."
        )
    try:
        mode = os.stat(real).st_mode
    except OSError:
        raise CheckpointError(f"Checkpoint file {str(path)!r} is missing (a broken link).") from None
    if not stat.S_ISREG(mode):
        raise CheckpointError(f"Checkpoint file {str(path)!r} is not a regular file; expected a regular file.")
    return path


def verify_checkpoint(folder):
    """Check the folder's structure, the size its config asks for, and every file's sha256.

    Returns (config, metadata).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"Checkpoint folder {str(folder)!r} does not exist.")
    roots = _allowed_roots(folder)
    config = read_json(safe_file(folder, CONFIG_FILE, roots))
    metadata = read_json(safe_file(folder, METADATA_FILE, roots))
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(
            f"{str(folder / CONFIG_FILE)!r} is not a keras-attn-zoo checkpoint config. "
            f"Received: format={config.get('format') if isinstance(config, dict) else None!r}; expected {FORMAT!r}."
        )
    expected = metadata.get("files") if isinstance(metadata, dict) else None
    if not isinstance(expected, dict) or WEIGHTS_FILE not in expected:
        raise CheckpointError(f"{str(folder / METADATA_FILE)!r} lists no file hashes; the checkpoint is incomplete.")
    paths = {name: safe_file(folder, name, roots) for name in expected}  # every name, before reading any
    for name in _read_by_load(folder, roots):
        if name not in expected:
            raise CheckpointError(
                f"Checkpoint file {str(folder / name)!r} has no sha256 in metadata.json; "
                "expected every file a load reads to be listed."
            )
    check_size(config, folder, os.path.getsize(paths[WEIGHTS_FILE]))
    for name, digest in expected.items():
        if file_sha256(paths[name]) != digest:
            raise CheckpointError(
                f"Checkpoint file {str(paths[name])!r} is corrupt or truncated: its sha256 does not match metadata.json."
            )
    return config, metadata


def _read_by_load(folder, roots):
    """The files a load reads besides the two JSON files: config.json, the weights, the assets."""
    names = [CONFIG_FILE, WEIGHTS_FILE]
    assets = folder / ASSETS_DIR
    if os.path.lexists(assets):
        real = Path(os.path.realpath(assets))
        if not any(real.is_relative_to(root) for root in roots) or not real.is_dir():
            raise CheckpointError(
                f"{str(assets)!r} leads outside the checkpoint or is not a folder; expected the assets folder inside it."
            )
        for entry in sorted(os.listdir(assets)):
            names.append(f"{ASSETS_DIR}/{entry}")
    return names


def check_size(config, folder, weights_bytes):
    """Refuse a config whose model is too big, or bigger than its weights file, before building it."""
    from keras_attn_zoo import model_size

    arguments = config.get("config")
    if not isinstance(arguments, dict):
        raise CheckpointError(f"{folder}/config.json has no 'config' mapping.")
    if config.get("class") not in ("Seq2Seq", "Captioner"):
        return  # an unknown class is refused by load_checkpoint with its own message
    try:
        count = model_size.parameter_count(arguments, config["class"])
    except (ValueError, TypeError, KeyError) as error:
        raise CheckpointError(f"{folder}/config.json does not describe a model: {error}") from None
    needed = count * model_size.BYTES_PER_PARAMETER
    least = count * model_size.MIN_BYTES_PER_PARAMETER  # a float16 file holds half the bytes
    if count > model_size.MAX_PARAMETERS:
        raise CheckpointError(
            f"{folder}/config.json asks for a model of {count:,} parameters ({_gigabytes(needed)} of float32 "
            f"weights); expected at most {model_size.MAX_PARAMETERS:,}. Refused without building it."
        )
    if least > weights_bytes:
        raise CheckpointError(
            f"{folder}/config.json asks for a model of {count:,} parameters ({needed:,} bytes of float32 weights, "
            f"{least:,} as float16), but {WEIGHTS_FILE} has {weights_bytes:,} bytes; expected a config that matches "
            "its weights. "
            "Refused without building it."
        )


def _gigabytes(size):
    return f"{size / 1e9:,.1f} GB"


# Constructor arguments that are a flat mapping of plain values rather than one plain value.
_MAPPING_ARGUMENTS = {"search_defaults"}


def _plain(value, mapping=False):
    """A JSON scalar, or with `mapping` a flat mapping of str to JSON scalars."""
    if isinstance(value, (str, int, float, bool, type(None))):
        return True
    return mapping and isinstance(value, dict) and all(isinstance(k, str) and _plain(v) for k, v in value.items())


def _checked_config(config, model_class, folder):
    """The constructor arguments, checked against the class signature and JSON value types."""
    arguments = config.get("config")
    if not isinstance(arguments, dict):
        raise CheckpointError(f"{folder}/config.json has no 'config' mapping.")
    allowed = set(inspect.signature(model_class.__init__).parameters) - {"self", "kwargs"}
    allowed |= {"name", "trainable"}
    unknown = sorted(set(arguments) - allowed)
    if unknown:
        raise CheckpointError(
            f"{folder}/config.json holds arguments {unknown} that {model_class.__name__} does not take."
        )
    for key, value in arguments.items():
        if not _plain(value, mapping=key in _MAPPING_ARGUMENTS):
            raise CheckpointError(
                f"{folder}/config.json: argument {key!r} must be a plain value (or a flat mapping of plain "
                f"values). Received: {type(value).__name__}."
            )
    arguments = dict(arguments)
    arguments.pop("trainable", None)
    return arguments


def load_checkpoint(folder):
    """Rebuild a model from a checkpoint folder; its metadata is at `model.zoo_metadata`."""
    folder = Path(folder)
    config, metadata = verify_checkpoint(folder)
    classes = _model_classes()
    model_class = classes.get(config.get("class"))
    if model_class is None:
        raise CheckpointError(
            f"{str(folder / CONFIG_FILE)!r} names class {config.get('class')!r}; expected one of {sorted(classes)}."
        )
    arguments = _checked_config(config, model_class, folder)
    try:
        model = model_class(**arguments)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{str(folder / CONFIG_FILE)!r} does not build a model: {error}") from None
    try:
        model.load_weights(str(folder / WEIGHTS_FILE))
    except Exception as error:  # h5py and Keras raise many types for a bad file.
        raise CheckpointError(
            f"Could not load {str(folder / WEIGHTS_FILE)!r} into the model: {str(error).splitlines()[0][:200]}"
        ) from None
    model.load_assets(str(folder / ASSETS_DIR))
    model.zoo_metadata = metadata
    model.zoo_task = config.get("task")
    model.zoo_recipe = config.get("recipe")
    return model
