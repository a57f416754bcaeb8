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
"""

import hashlib
import inspect
import json
from pathlib import Path

from keras_attn_zoo.errors import CheckpointError
from keras_attn_zoo.staging import staged_folder

FORMAT = "keras-attn-zoo/1"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
CARD_FILE = "README.md"
ASSETS_DIR = "assets"


def _model_classes():
    from keras_attn_zoo.models.seq2seq import Seq2Seq

    return {"Seq2Seq": Seq2Seq}


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(model, folder, task="translation", recipe="translation", metadata=None, card=None):
    """Write `model` (with its tokenizers) to `folder` in the checkpoint format.

    The folder is staged beside its final place and moved in whole (`staging.staged_folder`).
    Returns the folder's Path.
    """
    import keras

    import keras_attn_zoo

    folder = Path(folder)
    with staged_folder(folder) as staging:
        (staging / ASSETS_DIR).mkdir()
        model.save_assets(str(staging / ASSETS_DIR))
        model.save_weights(str(staging / WEIGHTS_FILE))
        config = {
            "format": FORMAT,
            "class": type(model).__name__,
            "task": task,
            "recipe": recipe,
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
                "files": _hashes(staging),
            }
        )
        _write_json(staging / METADATA_FILE, meta)
    return folder


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


def verify_checkpoint(folder):
    """Check the folder's structure and every file's sha256; returns (config, metadata)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"Checkpoint folder {str(folder)!r} does not exist.")
    config = read_json(folder / CONFIG_FILE)
    metadata = read_json(folder / METADATA_FILE)
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(
            f"{str(folder / CONFIG_FILE)!r} is not a keras-attn-zoo checkpoint config. "
            f"Received: format={config.get('format') if isinstance(config, dict) else None!r}; expected {FORMAT!r}."
        )
    expected = metadata.get("files") if isinstance(metadata, dict) else None
    if not isinstance(expected, dict) or WEIGHTS_FILE not in expected:
        raise CheckpointError(f"{str(folder / METADATA_FILE)!r} lists no file hashes; the checkpoint is incomplete.")
    for name, digest in expected.items():
        path = folder / name
        if not path.is_file():
            raise CheckpointError(f"Checkpoint file {str(path)!r} is missing.")
        if file_sha256(path) != digest:
            raise CheckpointError(
                f"Checkpoint file {str(path)!r} is corrupt or truncated: its sha256 does not match metadata.json."
            )
    return config, metadata


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
        if not isinstance(value, (str, int, float, bool, type(None))):
            raise CheckpointError(
                f"{folder}/config.json: argument {key!r} must be a plain value. Received: {type(value).__name__}."
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
