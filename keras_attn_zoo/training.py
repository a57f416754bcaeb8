"""`attn-zoo train RECIPE.toml`: train a recipe on text pairs, resumable, with early stopping.

A run lives in one folder (`[output] dir`, default `runs/<name>`):

    tokenizers/        the SentencePiece models, trained once from the train split
    backup/            Keras BackupAndRestore: weights, optimizer state and epoch, every epoch
    state.json         best dev loss, its epoch, epochs without improvement, training seconds
    log.csv            one row per epoch
    checkpoint/        the best model so far (by dev loss), in the checkpoint format

Killing the run (even with `kill -9`) and starting the same command again continues after the
last completed epoch: BackupAndRestore keeps the previous epoch's files too, so a kill during a
save falls back to them.

Recipe options beyond the model's (see `keras_attn_zoo.recipe_file`):

- `[tokenizer] shared = true`: one SentencePiece model for source and target (summarization),
  saved under both names.
- `[data] prefix = "COLUMN"`: that column goes before each source as "PREFIX: SOURCE".
- `[training] bucket_by = "source"`: batches sorted by source length first (long inputs, short outputs).
- `[training] init_from = "RUN_OR_CHECKPOINT"`: a fine-tune. The run starts from that checkpoint's
  weights (matched by variable path and shape; new variables keep their initial values) and its
  tokenizers; `init_from.json` and the checkpoint's metadata say where it started, so a model card
  reports both phases. See et al.'s coverage schedule is a copy model fine-tuned with coverage.
"""

import json
import logging
import os
import time
import warnings
from pathlib import Path

import keras

from keras_attn_zoo import stopping
from keras_attn_zoo.checkpoint import checkpoint_folder, copy_tokenizers
from keras_attn_zoo.recipe_file import (  # noqa: F401 (TRAINING_DEFAULTS, load_recipe_file: public here too)
    TRAINING_DEFAULTS,
    data_file,
    load_recipe_file,
    run_folder,
    saved_state,
    stop_reason,
)

logger = logging.getLogger("keras_attn_zoo")

def length_multiples(backend=None):
    """`(source, target)`: batch lengths are padded up to multiples of these on backends that compile per shape.

    JAX compiles the training step once per input shape (tens of seconds for a translation model
    on 2 CPU cores); batches padded only to their longest pair bring a new shape for most batches
    of the first epoch (the JAX backend trained about 7x slower than TensorFlow that way). Padded
    to multiples of 16 source and 8 target tokens, the length-sorted Bible batches take about 33
    shapes, each compiled once per run. TensorFlow runs one graph for every shape: None, no
    padding beyond the longest pair.
    """
    return (16, 8) if (backend or keras.backend.backend()) == "jax" else None


def _read_split(data, split):
    from keras_attn_zoo.data import read_pairs

    return read_pairs(
        data["path"], data["source"], data["target"], split=split, format=data.get("format"), prefix=data.get("prefix")
    )


def _tokenizers(spec, run_dir, sources, targets):
    from keras_attn_zoo.tokenizer import SubwordTokenizer

    folder = run_dir / "tokenizers"
    paths = folder / "source.spm.model", folder / "target.spm.model"
    if all(p.exists() for p in paths):
        if spec.get("tokenizer", {}).get("shared"):
            tokenizer = SubwordTokenizer.load(paths[0])
            return tokenizer, tokenizer
        return tuple(SubwordTokenizer.load(p) for p in paths)
    options = spec.get("tokenizer", {})
    folder.mkdir(parents=True, exist_ok=True)
    if options.get("shared"):  # one vocabulary for both sides (summarization), saved under both names
        logger.info("Training one shared tokenizer on %d source and target texts", len(sources) + len(targets))
        tokenizer = SubwordTokenizer.train(
            list(sources) + list(targets),
            vocab_size=options.get("vocab_size", 4000),
            model_type=options.get("model_type", "unigram"),
            seed=spec.get("seed", 0),
        )
        for path in paths:
            tokenizer.save(path)
        return tokenizer, tokenizer
    tokenizers = []
    for texts, key, path in ((sources, "source", paths[0]), (targets, "target", paths[1])):
        logger.info("Training the %s tokenizer on %d texts", key, len(texts))
        tokenizer = SubwordTokenizer.train(
            texts,
            vocab_size=options.get(f"{key}_vocab_size", options.get("vocab_size", 4000)),
            model_type=options.get("model_type", "unigram"),
            seed=spec.get("seed", 0),
        )
        tokenizer.save(path)
        tokenizers.append(tokenizer)
    return tuple(tokenizers)


def strategy_for(distribute):
    """The tf.distribute strategy for `--distribute`: None (default) or "mirrored"."""
    import tensorflow as tf

    if distribute in (None, "none", "default"):
        return tf.distribute.get_strategy()
    if distribute == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    raise ValueError(f"Received: distribute={distribute!r}; expected 'mirrored' or None.")


def train(recipe_file, run_dir=None, distribute=None, verbose=1):
    """Train the recipe of a TOML file; returns the path of the best checkpoint folder."""
    from keras_attn_zoo.checkpoint import save_checkpoint
    from keras_attn_zoo.recipes import get_recipe

    spec = load_recipe_file(recipe_file)
    recipe_options = dict(spec["recipe"])
    recipe_name = recipe_options.pop("name", None) or spec.get("task", "translation")
    builder = get_recipe(recipe_name)
    hp = spec["training"]
    run_dir = run_folder(spec, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    seed = int(spec.get("seed", 0))
    keras.utils.set_random_seed(seed)

    data = spec["data"]
    data_file(spec)
    training_data = training_data_for(recipe_name)(spec, run_dir, hp, seed)

    strategy = strategy_for(distribute)
    with strategy.scope():
        for key, value in training_data.model_defaults.items():
            recipe_options.setdefault(key, value)
        # The [evaluation] search settings travel with the model: its predict, evaluate and export defaults.
        recipe_options.setdefault("search_defaults", spec.get("evaluation") or None)
        model = builder(*training_data.builder_args, **recipe_options)
        # The model's own loss (masked cross-entropy) and metric (token accuracy).
        model.compile(optimizer=keras.optimizers.Adam(hp["learning_rate"], clipnorm=hp["clipnorm"]))
    init = None
    if hp["init_from"] and not saved_state(run_dir):
        init = initialize_from(model, hp["init_from"])
    elif hp["init_from"]:
        init = json.loads((run_dir / "init_from.json").read_text())
    if init is not None:
        (run_dir / "init_from.json").write_text(json.dumps(init, indent=2))
    card_info = {
        "name": spec["name"],
        "recipe_file": spec["file"],
        "training_data": {k: data[k] for k in data if k not in ("path", "build")} | {"file": os.path.basename(data["path"])},
        "train_examples": training_data.train_examples,
        "dev_examples": training_data.dev_examples,
        "seed": seed,
        "hyperparameters": hp,
    }
    if init is not None:
        card_info["init_from"] = init
    state = EpochState(run_dir, hp, lambda m, meta: save_checkpoint(
        m, run_dir / "checkpoint", task=builder.__name__, recipe=recipe_name, metadata=meta
    ), card_info)
    callbacks = [
        state,
        keras.callbacks.BackupAndRestore(str(run_dir / "backup"), double_checkpoint=True, delete_checkpoint=False),
        keras.callbacks.CSVLogger(str(run_dir / "log.csv"), append=True),
        StopWhenAsked(),
    ]
    if state.done:
        logger.info("%s already finished (%s); nothing to train.", run_dir, state.data.get("stopped"))
        return run_dir / "checkpoint"
    train_data, dev_data = training_data.datasets(model, length_multiples())
    with warnings.catch_warnings():
        # Keras warns that it ignores `shuffle` for a tf.data input (the pipeline shuffles) and
        # that a dataset of unknown length "ran out of data" at each epoch's end (bucketing).
        warnings.filterwarnings("ignore", message=r".*shuffle=True.*")
        warnings.filterwarnings("ignore", message=r".*ran out of data.*")
        model.fit(train_data, validation_data=dev_data, epochs=hp["epochs"], callbacks=callbacks, verbose=verbose)
    state.finish()
    return run_dir / "checkpoint"


def training_data_for(recipe_name):
    """The class that reads a recipe's data for `train`: text pairs, or captioned images."""
    from keras_attn_zoo.recipes.registry import RECIPES

    if RECIPES[recipe_name][0] == "captioning":
        from keras_attn_zoo.caption_training import CaptionTrainingData

        return CaptionTrainingData
    return TextTrainingData


class TextTrainingData:
    """What `train` needs of a text recipe (translation, summarization).

    Reads the train and dev pairs, trains (or reloads) the tokenizers, and makes the bucketed
    teacher-forcing datasets; `builder_args` are the recipe builder's positional arguments
    (source and target tokenizers). Captioning's twin is `caption_training.CaptionTrainingData`.
    """

    def __init__(self, spec, run_dir, hp, seed):
        data = spec["data"]
        self.hp, self.seed = hp, seed
        train_sources, train_targets = _read_split(data, data.get("train_split", "train"))
        if hp["max_train_examples"]:
            train_sources = train_sources[: hp["max_train_examples"]]
            train_targets = train_targets[: hp["max_train_examples"]]
        self.dev = _read_split(data, data.get("dev_split", "dev"))
        self.train = train_sources, train_targets
        if hp["init_from"]:  # a fine-tune reads text with the vocabulary its weights were trained on
            copy_tokenizers(checkpoint_folder(hp["init_from"]), run_dir / "tokenizers", ("source.spm.model", "target.spm.model"))
        self.builder_args = _tokenizers(spec, run_dir, train_sources, train_targets)
        _report_truncation(self.builder_args[0], train_sources, hp["max_source_length"], "training inputs")
        self.train_examples, self.dev_examples = len(train_sources), len(self.dev[0])
        self.model_defaults = {"max_source_length": hp["max_source_length"], "max_target_length": hp["max_target_length"]}

    def datasets(self, model, length_multiples=None):
        from keras_attn_zoo.data import make_dataset

        hp = self.hp
        lengths = dict(
            max_source_length=hp["max_source_length"],
            max_target_length=hp["max_target_length"],
            length_multiples=length_multiples,
            bucket_by=hp["bucket_by"],
        )
        source_tokenizer, target_tokenizer = self.builder_args
        train_data = make_dataset(
            *self.train, source_tokenizer, target_tokenizer, batch_size=hp["batch_size"], seed=self.seed, **lengths
        )
        dev_data = make_dataset(
            *self.dev, source_tokenizer, target_tokenizer, batch_size=hp["batch_size"], shuffle=False, **lengths
        )
        return train_data, dev_data


def _report_truncation(tokenizer, texts, limit, what):
    """One log line: how many texts are longer than `limit` pieces (training reads their start only)."""
    if not limit:
        return 0
    count = sum(len(ids) > limit for ids in tokenizer.encode(list(texts)))
    if count:
        logger.warning(
            "%d of %d %s are longer than max_source_length=%d subword pieces; training reads their first %d.",
            count, len(texts), what, limit, limit,
        )
    return count


def initialize_from(model, folder):
    """Start `model` from the weights of a trained checkpoint folder (a fine-tune).

    Variables are matched by their path inside the model and their shape; the ones the
    checkpoint lacks (a coverage weight a first phase trained without, for instance) keep their
    initial values, and are named in the log. Returns what the model card reports: the folder,
    how long and how many epochs it was trained, and the variables that started fresh.
    """
    from keras_attn_zoo.checkpoint import load_checkpoint

    folder = checkpoint_folder(folder)
    source = load_checkpoint(folder)

    trained = {v.path: v for v in source.weights}  # paths name layers, not the model: they agree
    fresh = []
    for variable in model.weights:
        match = trained.get(variable.path)
        if match is not None and tuple(match.shape) == tuple(variable.shape):
            variable.assign(match.value)
        else:
            fresh.append(variable.path)
    if len(fresh) == len(model.weights):
        raise ValueError(f"init_from={str(folder)!r}: no variable of the model matches the checkpoint's.")
    metadata = source.zoo_metadata or {}
    logger.info("Initialised from %s; %d variable(s) start fresh: %s", folder, len(fresh), ", ".join(fresh))
    return {
        "folder": str(folder),
        "name": metadata.get("name"),
        "training_seconds": metadata.get("training_seconds"),
        "best_epoch": metadata.get("best_epoch"),
        "fresh_variables": fresh,
    }


class StopWhenAsked(keras.callbacks.Callback):
    """Raises the SIGTERM stop after the batch in which one came, if its own exception was lost
    (see `keras_attn_zoo.stopping`)."""

    def on_train_batch_end(self, batch, logs=None):
        stopping.raise_if_requested()

    on_test_batch_end = on_train_batch_end


class EpochState(keras.callbacks.Callback):
    """Early stopping on dev loss, best-checkpoint saving and a time budget that survive a restart."""

    def __init__(self, run_dir, hp, save, info):
        super().__init__()
        self.path = Path(run_dir) / "state.json"
        self.hp, self.save, self.info = hp, save, info
        self.data = {"best_val_loss": None, "best_epoch": None, "wait": 0, "seconds": 0.0, "stopped": None}
        self.by_epoch = {}
        if self.path.exists():
            self.by_epoch = json.loads(self.path.read_text()).get("by_epoch", {})
            self.data.update(saved_state(run_dir))  # as of the epoch the Keras backup holds
            if self.data["stopped"] is not None and stop_reason(self.data, hp) is None:
                logger.info(
                    "%s had stopped (%s); the recipe now allows more: training goes on.", run_dir, self.data["stopped"]
                )
                self.data["stopped"] = None

    def _write(self):
        self.by_epoch[str(self.data.get("epochs", 0))] = dict(self.data)
        self.path.write_text(json.dumps({**self.data, "by_epoch": self.by_epoch}, indent=2))

    @property
    def done(self):
        return self.data.get("stopped") is not None

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.data["seconds"] += time.monotonic() - self.started
        self.data["epochs"] = epoch + 1
        val_loss = logs.get("val_loss")
        if val_loss is not None and (self.data["best_val_loss"] is None or val_loss < self.data["best_val_loss"]):
            self.data.update(best_val_loss=float(val_loss), best_epoch=epoch + 1, wait=0)
            meta = dict(
                self.info,
                best_epoch=epoch + 1,
                dev_loss=float(val_loss),
                train_loss=float(logs.get("loss", float("nan"))),
                training_seconds=round(self.data["seconds"], 1),
            )
            self.save(self.model, meta)
        else:
            self.data["wait"] += 1
        reason = stop_reason(self.data, self.hp)
        if reason is not None and not reason.startswith("all "):  # the last epoch is `finish`'s to say
            self.data["stopped"] = reason
        if self.data["stopped"]:
            self.model.stop_training = True
        self._write()

    def finish(self):
        if not self.data["stopped"]:
            self.data["stopped"] = f"all {self.hp['epochs']} epochs done"
        self._write()
