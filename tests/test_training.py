"""`keras_attn_zoo.training.train` on the tiny Bible fixture.

The run folder's outputs, early stopping, resuming after `kill -9`, the line `attn-zoo train`
leaves when stopped by SIGTERM, MirroredStrategy over two logical CPUs, and the one-line errors of
bad recipes. The resume and mirrored tests start
subprocesses (a TensorFlow start-up each, two for resume): 20-30 s each on 2 busy CPU cores.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_attn_zoo.checkpoint import load_checkpoint
from keras_attn_zoo.errors import DataError
from keras_attn_zoo.recipe_file import saved_state
from keras_attn_zoo.training import load_recipe_file, train

TINY = Path(__file__).parent / "fixtures" / "bible_en_es_tiny.tsv"
ROOT = Path(__file__).resolve().parent.parent


def write_recipe(folder, attention="bahdanau", data_source="en", **training):
    """A tiny recipe TOML (units 16, embedding 8, vocabulary <= 100, batch 8) in `folder`."""
    defaults = {"epochs": 2, "batch_size": 8, "patience": 5, "max_source_length": 24, "max_target_length": 24}
    training = defaults | training
    lines = "\n".join(f"{key} = {json.dumps(value)}" for key, value in training.items())
    path = Path(folder) / "recipe.toml"
    path.write_text(
        textwrap.dedent(
            f"""\
            name = "tiny"
            seed = 3

            [recipe]
            name = "translation"
            attention = "{attention}"
            units = 16
            embedding_dim = 8
            dropout = 0.0

            [data]
            path = "{TINY.as_posix()}"
            source = "{data_source}"
            target = "es"

            [tokenizer]
            vocab_size = 100

            [training]
            """
        )
        + lines
        + "\n",
        encoding="utf-8",
    )
    return path


def read_log(run_dir):
    with open(Path(run_dir) / "log.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def read_state(run_dir):
    return json.loads((Path(run_dir) / "state.json").read_text())


def python(script, *args):
    """Command line that runs `script` with the test interpreter, quiet TensorFlow, from the repository."""
    return [sys.executable, "-c", textwrap.dedent(script), *map(str, args)]


def child_env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


# -- A run's folder -----------------------------------------------------------------------------
def test_train_writes_a_loadable_checkpoint_and_one_log_row_per_epoch(tmp_path):
    recipe = write_recipe(tmp_path)
    run_dir = tmp_path / "run"
    checkpoint = train(recipe, run_dir, verbose=0)
    assert checkpoint == run_dir / "checkpoint"

    rows = read_log(run_dir)
    assert [int(row["epoch"]) for row in rows] == [0, 1]
    assert {"loss", "val_loss"} <= set(rows[0])
    state = read_state(run_dir)
    assert state["stopped"] == "all 2 epochs done"
    assert state["epochs"] == 2

    model = load_checkpoint(checkpoint)
    assert (model.units, model.embedding_dim, model.attention) == (16, 8, "bahdanau")
    assert model.target_vocab_size == model.target_tokenizer.vocab_size <= 100
    assert model.zoo_metadata["best_epoch"] == state["best_epoch"]
    assert model.zoo_metadata["dev_loss"] == pytest.approx(min(float(row["val_loss"]) for row in rows))
    assert model.zoo_metadata["train_examples"] == 52 and model.zoo_metadata["dev_examples"] == 4
    (prediction,) = model.predict_texts(["In the beginning God created the heavens."], max_length=6)
    assert 1 <= len(prediction.token_ids) <= 5

    # A finished run is not trained again: the same call returns at once and logs nothing.
    assert train(recipe, run_dir, verbose=0) == checkpoint
    assert len(read_log(run_dir)) == 2

    # A recipe that now allows more epochs takes the run on from where it stopped.
    write_recipe(tmp_path, epochs=3)
    assert train(recipe, run_dir, verbose=0) == checkpoint
    assert [int(row["epoch"]) for row in read_log(run_dir)] == [0, 1, 2]
    state = read_state(run_dir)
    assert (state["epochs"], state["stopped"]) == (3, "all 3 epochs done")


def test_early_stopping_on_dev_loss_writes_stopped(tmp_path):
    # With a learning rate of 0 the dev loss never improves after the first epoch.
    recipe = write_recipe(tmp_path, attention="none", epochs=6, patience=2, learning_rate=0.0)
    run_dir = tmp_path / "run"
    train(recipe, run_dir, verbose=0)
    state = read_state(run_dir)
    assert state["stopped"] == "early stopping after epoch 3"
    assert (state["best_epoch"], state["wait"], state["epochs"]) == (1, 2, 3)
    rows = read_log(run_dir)
    assert [int(row["epoch"]) for row in rows] == [0, 1, 2]
    assert len({row["val_loss"] for row in rows}) == 1
    assert load_checkpoint(run_dir / "checkpoint").zoo_metadata["best_epoch"] == 1


# -- Resume after kill -9 -----------------------------------------------------------------------
TRAIN_SCRIPT = """
    import sys
    from keras_attn_zoo.training import train
    train(sys.argv[1], sys.argv[2], verbose=0)
"""


def test_train_on_the_jax_backend_writes_a_checkpoint_tensorflow_loads(tmp_path):
    """`attn-zoo train` under KERAS_BACKEND=jax, whose batches are padded to few shapes (length_multiples)."""
    recipe = write_recipe(tmp_path)
    run_dir = tmp_path / "run"
    script = TRAIN_SCRIPT + "    from keras_attn_zoo.training import length_multiples\n    print(length_multiples())\n"
    result = subprocess.run(
        python(script, recipe, run_dir), env=dict(child_env(), KERAS_BACKEND="jax"), capture_output=True, timeout=600
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert result.stdout.decode().split() == ["(16,", "8)"]
    assert read_state(run_dir)["stopped"] == "all 2 epochs done"
    rows = read_log(run_dir)
    assert [int(row["epoch"]) for row in rows] == [0, 1]
    assert float(rows[1]["loss"]) < float(rows[0]["loss"])
    model = load_checkpoint(run_dir / "checkpoint")  # saved on JAX, loaded here on TensorFlow
    (prediction,) = model.predict_texts(["In the beginning God created the heavens."], max_length=6)
    assert 1 <= len(prediction.token_ids) <= 5


def test_kill_9_then_the_same_command_continues_from_the_next_epoch(tmp_path):
    epochs = 8
    recipe = write_recipe(tmp_path, attention="none", epochs=epochs)
    run_dir = tmp_path / "run"
    command = python(TRAIN_SCRIPT, recipe, run_dir)
    errors = tmp_path / "first.stderr"
    with open(errors, "wb") as stderr:
        first = subprocess.Popen(command, env=child_env(), stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        # Wait for a saved epoch: state.json counts it, and its log row (written by the last
        # callback, after the backup) is there.
        deadline = time.monotonic() + 240
        while True:
            assert first.poll() is None, errors.read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, "the first epoch was never saved"
            try:
                saved = read_state(run_dir).get("epochs", 0) >= 1 and len(read_log(run_dir)) >= 1
            except (OSError, ValueError):
                saved = False
            if saved:
                break
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
    finally:
        first.kill()
        first.wait()
    assert first.returncode == -signal.SIGKILL
    rows_before = len(read_log(run_dir))
    assert read_state(run_dir)["stopped"] is None
    assert rows_before < epochs, "the first run finished before it was killed"

    second = subprocess.run(command, env=child_env(), capture_output=True, timeout=300)
    assert second.returncode == 0, second.stderr.decode()[-2000:]
    epochs_logged = [int(row["epoch"]) for row in read_log(run_dir)]
    resumed = epochs_logged[rows_before:]
    assert resumed, "the second run logged no epoch"
    assert 1 <= resumed[0] <= rows_before  # continued after a saved epoch: not from the start, no gap
    # ... with the trained weights: a restart from scratch would repeat epoch 0's dev loss exactly.
    assert float(read_log(run_dir)[rows_before]["val_loss"]) < float(read_log(run_dir)[0]["val_loss"]) - 1e-4
    assert resumed == list(range(resumed[0], epochs))
    state = read_state(run_dir)
    assert state["stopped"] == f"all {epochs} epochs done"
    assert state["epochs"] == epochs
    assert load_checkpoint(run_dir / "checkpoint").zoo_metadata["best_epoch"] == state["best_epoch"]


def test_attn_zoo_train_stopped_by_sigterm_says_how_to_resume(tmp_path):
    recipe = write_recipe(tmp_path, attention="none", epochs=50)
    run_dir = tmp_path / "run"
    command = [str(Path(sys.executable).with_name("attn-zoo")), "train", str(recipe), "--run-dir", str(run_dir)]
    errors = tmp_path / "train.stderr"
    with open(errors, "wb") as stderr:
        process = subprocess.Popen(command, env=child_env(), stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 240
        while not (run_dir / "state.json").exists():
            assert process.poll() is None, errors.read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, "the first epoch was never saved"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 128 + signal.SIGTERM
    finally:
        process.kill()
        process.wait()
    last = errors.read_text().strip().splitlines()[-1]
    epochs = saved_state(run_dir)["epochs"]  # the epoch the backup holds, which a resume continues after
    assert 1 <= epochs < 50
    assert last == f"Stopped. `attn-zoo train {recipe} --run-dir {run_dir}` resumes after epoch {epochs}."
    assert "Traceback" not in errors.read_text()


# -- MirroredStrategy over two logical CPUs -----------------------------------------------------
MIRRORED_SCRIPT = """
    import json
    import sys

    import tensorflow as tf

    # Before anything else initialises TensorFlow: split the CPU into two logical devices.
    (cpu,) = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import keras_attn_zoo.training as training

    used = []

    def spy(distribute):
        strategy = original(distribute)
        used.append(strategy)
        return strategy

    original, training.strategy_for = training.strategy_for, spy
    training.train(sys.argv[1], sys.argv[2], distribute="mirrored", verbose=0)
    print(json.dumps({
        "replicas": original("mirrored").num_replicas_in_sync,
        "used": [type(s).__name__ for s in used],
        "used_replicas": [s.num_replicas_in_sync for s in used],
    }))
"""


def test_distribute_mirrored_trains_on_two_replicas(tmp_path):
    recipe = write_recipe(tmp_path, epochs=1)
    run_dir = tmp_path / "run"
    done = subprocess.run(
        python(MIRRORED_SCRIPT, recipe, run_dir), env=child_env(), capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    report = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert report == {"replicas": 2, "used": ["MirroredStrategy"], "used_replicas": [2]}
    assert [int(row["epoch"]) for row in read_log(run_dir)] == [0]
    assert read_state(run_dir)["stopped"] == "all 1 epochs done"
    assert load_checkpoint(run_dir / "checkpoint").attention == "bahdanau"


# -- Errors: one line, a DataError --------------------------------------------------------------
def assert_one_line_data_error(match, recipe, tmp_path):
    with pytest.raises(DataError, match=match) as info:
        train(recipe, tmp_path / "run", verbose=0)
    assert "\n" not in str(info.value)


def test_missing_recipe_file(tmp_path):
    assert_one_line_data_error(r"Recipe file '.*nowhere\.toml' does not exist\.", tmp_path / "nowhere.toml", tmp_path)


def test_bad_toml(tmp_path):
    recipe = tmp_path / "bad.toml"
    recipe.write_text('name = "tiny"\n[recipe\nunits = 16\n', encoding="utf-8")
    assert_one_line_data_error(r"Recipe file '.*bad\.toml' is not valid TOML: .*line 2", recipe, tmp_path)


def test_unknown_training_key(tmp_path):
    recipe = write_recipe(tmp_path, learning_rat=0.1)
    assert_one_line_data_error(r"\[training\] has unknown key .learning_rat.\. Did you mean .learning_rate.", recipe, tmp_path)


def test_missing_data_column(tmp_path):
    recipe = write_recipe(tmp_path, data_source="english")
    assert load_recipe_file(recipe)["data"]["path"] == str(TINY)
    assert_one_line_data_error(
        r"bible_en_es_tiny\.tsv:1: no column 'english'; columns present: split, ref, en, es\.", recipe, tmp_path
    )
    assert not (tmp_path / "run" / "checkpoint").exists()


def test_state_follows_the_backup_epoch_after_a_kill(tmp_path):
    """A kill after state.json was written but before the Keras backup: counters roll back."""
    import json

    from keras_attn_zoo.training import EpochState

    epoch1 = {"best_val_loss": 2.0, "best_epoch": 1, "wait": 0, "seconds": 10.0, "stopped": None, "epochs": 1}
    epoch2 = {"best_val_loss": 2.0, "best_epoch": 1, "wait": 1, "seconds": 20.0, "stopped": None, "epochs": 2}
    (tmp_path / "state.json").write_text(json.dumps({**epoch2, "by_epoch": {"1": epoch1, "2": epoch2}}))
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "training_metadata.json").write_text(json.dumps({"epoch": 1, "batch": 0}))
    state = EpochState(tmp_path, {"patience": 3}, save=None, info={})
    assert state.data == epoch1
    (tmp_path / "backup" / "training_metadata.json").write_text(json.dumps({"epoch": 2, "batch": 0}))
    assert EpochState(tmp_path, {"patience": 3}, save=None, info={}).data == epoch2


def test_a_sigterm_whose_exception_was_lost_stops_fit_after_its_batch(monkeypatch):
    """The SIGTERM handler's SystemExit can be lost (raised inside a destructor, which Python
    reports as "Exception ignored" and goes on from): `StopWhenAsked` raises the kept request
    after the batch in which the signal came, so `fit` does not run on to its end."""
    from keras_attn_zoo import stopping
    from keras_attn_zoo.training import StopWhenAsked

    monkeypatch.setattr(stopping, "_requested", threading.Event())
    batches = []

    class LostSigterm(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            batches.append(batch)
            if len(batches) == 3:
                try:  # what a destructor does with the handler's exception
                    stopping._terminated(signal.SIGTERM, None)
                except SystemExit:
                    pass

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((40, 2), "float32"), np.zeros((40, 1), "float32")
    with pytest.raises(SystemExit) as stop:
        model.fit(x, y, batch_size=4, epochs=5, callbacks=[LostSigterm(), StopWhenAsked()], verbose=0)
    assert stop.value.code == 128 + signal.SIGTERM
    assert len(batches) == 3  # the batch in which it came ran to its end; no further one started
