"""Loading a checkpoint someone else published: refused before anything is allocated or read
outside the folder, and readable by Keras' own loader too.

The hostile checkpoints are small: `fixtures/hostile_huge_units/` (a config asking for 10 million
GRU units, hashes updated), and damaged copies of one tiny checkpoint made per test.
"""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import keras_attn_zoo
from keras_attn_zoo import checkpoint, model_size
from keras_attn_zoo.checkpoint import METADATA_FILE, WEIGHTS_FILE, file_sha256, save_checkpoint
from keras_attn_zoo.cli import cli
from keras_attn_zoo.errors import CheckpointError

FIXTURES = Path(__file__).parent / "fixtures"
HUGE = FIXTURES / "hostile_huge_units"
SENTENCES = ["In the beginning God created the heavens and the earth.", "God said, let there be light."]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from keras_attn_zoo.data import read_pairs
    from keras_attn_zoo.recipes import translation
    from keras_attn_zoo.tokenizer import SubwordTokenizer

    sources, targets = read_pairs(FIXTURES / "bible_en_es_tiny.tsv", "en", "es")
    model = translation(
        SubwordTokenizer.train(sources, vocab_size=100),
        SubwordTokenizer.train(targets, vocab_size=100),
        units=8,
        embedding_dim=8,
        dropout=0.0,
        max_target_length=8,
    )
    folder = save_checkpoint(model, tmp_path_factory.mktemp("safety") / "checkpoint")
    return model, folder, [p.text for p in model.predict_texts(SENTENCES)]


@pytest.fixture
def copy(tiny, tmp_path):
    return Path(shutil.copytree(tiny[1], tmp_path / "checkpoint"))


@pytest.fixture
def never_built(monkeypatch):
    """Make building any checkpoint's model an error, so a test proves nothing was allocated."""
    built = []

    class NeverBuilt:
        def __init__(self, **arguments):
            built.append(arguments)
            raise AssertionError("the model was built")

    monkeypatch.setattr(checkpoint, "_model_classes", lambda: {"Seq2Seq": NeverBuilt})
    return built


def list_file(folder, name, path=None):
    """Record `name` in metadata.json with the sha256 of `path` (default: folder/name)."""
    metadata = json.loads((folder / METADATA_FILE).read_text())
    metadata["files"][name] = file_sha256(path or folder / name)
    (folder / METADATA_FILE).write_text(json.dumps(metadata))


def one_line(error):
    message = str(error.value)
    assert "\n" not in message
    return message


# --- Size from the config, before building ----------------------------------------------------


def test_huge_config_is_refused_without_building(never_built):
    with pytest.raises(CheckpointError) as error:
        keras_attn_zoo.from_pretrained(HUGE)
    message = one_line(error)
    count = model_size.parameter_count(json.loads((HUGE / "config.json").read_text())["config"])
    assert count > 10**15  # the GRU kernels alone: 10^7 x 3 * 10^7 floats
    assert f"asks for a model of {count:,} parameters" in message and "expected at most 1,000,000,000" in message
    assert "Refused without building it" in message
    assert never_built == []


def test_huge_config_from_the_command_line_is_one_line(never_built):
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, ["predict", str(HUGE), "x"])
    assert result.exit_code == 1 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "parameters" in line and never_built == []


def test_config_bigger_than_its_weights_file_is_refused(copy, never_built):
    config = json.loads((copy / "config.json").read_text())
    config["config"]["units"] = 2048  # ~30 million parameters: under the limit, over the file
    (copy / "config.json").write_text(json.dumps(config))
    list_file(copy, "config.json")
    with pytest.raises(CheckpointError) as error:
        keras_attn_zoo.from_pretrained(copy)
    message = one_line(error)
    count = model_size.parameter_count(config["config"])
    assert f"{count:,} parameters ({4 * count:,} bytes of float32 weights, {2 * count:,} as float16)" in message
    assert f"{WEIGHTS_FILE} has {(copy / WEIGHTS_FILE).stat().st_size:,} bytes" in message
    assert never_built == []


@pytest.mark.parametrize("value", [0, -3, 2.5, "256", True, None])
def test_size_argument_that_is_not_a_positive_integer(copy, never_built, value):
    config = json.loads((copy / "config.json").read_text())
    config["config"]["units"] = value
    (copy / "config.json").write_text(json.dumps(config))
    list_file(copy, "config.json")
    with pytest.raises(CheckpointError, match=r"units=.*; expected an integer >= 1"):
        keras_attn_zoo.from_pretrained(copy)
    assert never_built == []


# --- Every file read is a regular file inside the folder --------------------------------------


@pytest.mark.parametrize("kind", ["parent", "absolute"])
def test_file_names_that_leave_the_folder(copy, tmp_path, never_built, kind):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"a file that is not part of the checkpoint")
    name = "../outside.bin" if kind == "parent" else str(outside)
    list_file(copy, name, outside)  # with the right hash, as a hostile publisher would write it
    with pytest.raises(CheckpointError) as error:
        keras_attn_zoo.from_pretrained(copy)
    expected = "contains '..'" if kind == "parent" else "is an absolute path"
    assert expected in one_line(error) and never_built == []


def test_symlink_out_of_the_folder(copy, tmp_path, never_built):
    outside = tmp_path / "elsewhere" / "source.spm.model"
    outside.parent.mkdir()
    shutil.copy(copy / "assets" / "source.spm.model", outside)  # same bytes: the hash matches
    (copy / "assets" / "source.spm.model").unlink()
    os.symlink(outside, copy / "assets" / "source.spm.model")
    with pytest.raises(CheckpointError) as error:
        keras_attn_zoo.from_pretrained(copy)
    message = one_line(error)
    assert "is a link to" in message and "outside the checkpoint" in message and never_built == []


def test_symlink_inside_the_folder_is_allowed(tiny, copy):
    model, _, expected = tiny
    (copy / "assets" / "target.spm.model").rename(copy / "target.bin")
    os.symlink(copy / "target.bin", copy / "assets" / "target.spm.model")
    list_file(copy, "target.bin")
    loaded = keras_attn_zoo.from_pretrained(copy)
    assert [p.text for p in loaded.predict_texts(SENTENCES)] == expected


def test_assets_folder_that_is_a_link_out(copy, tmp_path, never_built):
    shutil.move(copy / "assets", tmp_path / "assets-elsewhere")
    os.symlink(tmp_path / "assets-elsewhere", copy / "assets")
    with pytest.raises(CheckpointError, match="outside the checkpoint"):
        keras_attn_zoo.from_pretrained(copy)
    assert never_built == []


def test_asset_without_a_hash_is_refused(copy, never_built):
    metadata = json.loads((copy / METADATA_FILE).read_text())
    del metadata["files"]["assets/target.spm.model"]  # a swapped tokenizer would go unchecked
    (copy / METADATA_FILE).write_text(json.dumps(metadata))
    with pytest.raises(CheckpointError, match=r"assets/target.spm.model' has no sha256 in metadata.json"):
        keras_attn_zoo.from_pretrained(copy)
    assert never_built == []


def test_a_fifo_is_not_read(copy, never_built):
    os.mkfifo(copy / "assets" / "extra")  # reading it would block forever
    list_file(copy, "assets/extra", copy / "config.json")
    with pytest.raises(CheckpointError, match="is not a regular file"):
        keras_attn_zoo.from_pretrained(copy)
    assert never_built == []


# --- One folder, two loaders ------------------------------------------------------------------


def test_keras_load_model_reads_a_checkpoint_folder(tiny):
    import keras

    model, folder, expected = tiny
    loaded = keras.saving.load_model(folder)
    assert type(loaded) is type(model)
    for actual, wanted in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(actual, wanted)
    assert [p.text for p in loaded.predict_texts(SENTENCES)] == expected


def test_keras_load_model_without_the_package_imported_names_the_zoo_loader(tiny):
    # A Keras user who has not imported keras_attn_zoo gets Keras' "Could not locate class" error,
    # which prints the config: its `load_with` line says how to load the folder.
    import subprocess
    import sys

    _, folder, _ = tiny
    code = "import keras, sys; keras.saving.load_model(sys.argv[1])"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    result = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, env=env)
    assert result.returncode != 0
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("TypeError")]
    assert "Could not locate class 'Seq2Seq'" in error and "keras_attn_zoo.from_pretrained" in error


def test_keras_load_model_reads_a_repository_made_by_push(tiny, hub, hub_cache, hub_repo_id):
    import keras

    model, _, expected = tiny
    keras_attn_zoo.push_to_hub(model, hub_repo_id)
    loaded = keras.saving.load_model(f"hf://{hub_repo_id}")
    for actual, wanted in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(actual, wanted)
    assert [p.text for p in loaded.predict_texts(SENTENCES)] == expected
    # and the zoo's loader reads the same repository, through huggingface_hub's cache links
    assert [p.text for p in keras_attn_zoo.from_pretrained(f"hf://{hub_repo_id}").predict_texts(SENTENCES)] == expected


# --- A captioner's config is sized like a Seq2Seq's --------------------------------------------


def _captioner_checkpoint(tmp_path, **changes):
    """A captioner checkpoint folder whose config.json asks for `changes` (hashes updated)."""
    from keras_attn_zoo.models.captioner import Captioner

    model = Captioner(29, feature_channels=12, feature_grid=2, image_size=64, units=8, embedding_dim=6)
    folder = save_checkpoint(model, tmp_path / "captioner", task="captioning", recipe="captioning")
    config = json.loads((folder / "config.json").read_text())
    config["config"].update(changes)
    (folder / "config.json").write_text(json.dumps(config))
    list_file(folder, "config.json")
    return folder


@pytest.mark.parametrize(
    "changes, expected",
    [
        (dict(units=100_000, feature_channels=100_000), "expected at most 1,000,000,000"),
        (dict(units=512), "as float16), but model.weights.h5 has"),
    ],
)
def test_captioner_config_too_big_is_refused_without_building(tmp_path, monkeypatch, changes, expected):
    folder = _captioner_checkpoint(tmp_path, **changes)
    built = []
    monkeypatch.setattr(checkpoint, "_model_classes", lambda: {"Captioner": lambda **a: built.append(a)})
    with pytest.raises(CheckpointError) as error:
        keras_attn_zoo.from_pretrained(folder)
    message = one_line(error)
    count = model_size.parameter_count(json.loads((folder / "config.json").read_text())["config"], "Captioner")
    assert f"asks for a model of {count:,} parameters" in message and expected in message
    assert built == []


def test_captioner_weights_file_holds_the_decoder_alone(tmp_path):
    import h5py

    folder = _captioner_checkpoint(tmp_path)
    config = json.loads((folder / "config.json").read_text())["config"]
    count = model_size.parameter_count(config, "Captioner")
    stored = []
    with h5py.File(folder / WEIGHTS_FILE, "r") as file:
        file.visititems(lambda name, item: stored.append(item.size) if isinstance(item, h5py.Dataset) else None)
    assert sum(stored) == count  # no CNN weight among them
    assert (folder / WEIGHTS_FILE).stat().st_size < 4 * count + 200_000
