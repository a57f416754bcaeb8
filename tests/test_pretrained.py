"""from_pretrained / push_to_hub against the local test Hub, and what a bad checkpoint folder gives.

One tiny translation model (vocabulary 100, units 8, untrained) is built per module: these tests
check plumbing, so they compare a model with its own weights after a round trip.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import keras_attn_zoo
from keras_attn_zoo import presets
from keras_attn_zoo.checkpoint import METADATA_FILE, WEIGHTS_FILE, file_sha256, load_checkpoint, save_checkpoint
from keras_attn_zoo.errors import CheckpointError, HubError, UnknownNameError

FIXTURE = Path(__file__).parent / "fixtures" / "bible_en_es_tiny.tsv"
SENTENCES = ["In the beginning God created the heavens and the earth.", "God said, let there be light.", ""]


def texts(model):
    return [p.text for p in model.predict_texts(SENTENCES)]


def assert_same_weights(actual, expected):
    assert [w.path for w in actual.weights] == [w.path for w in expected.weights]
    for a, e in zip(actual.get_weights(), expected.get_weights()):
        np.testing.assert_array_equal(a, e)


def rehash(folder, name):
    """Record a changed file's sha256 in metadata.json, as a consistent but wrong checkpoint would."""
    metadata = json.loads((folder / METADATA_FILE).read_text())
    metadata["files"][name] = file_sha256(folder / name)
    (folder / METADATA_FILE).write_text(json.dumps(metadata))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(model, checkpoint folder, greedy outputs for SENTENCES)."""
    import keras

    from keras_attn_zoo.data import read_pairs
    from keras_attn_zoo.recipes import translation
    from keras_attn_zoo.tokenizer import SubwordTokenizer

    keras.utils.set_random_seed(7)
    sources, targets = read_pairs(FIXTURE, "en", "es")
    model = translation(
        SubwordTokenizer.train(sources, vocab_size=100),
        SubwordTokenizer.train(targets, vocab_size=100),
        attention="bahdanau",
        units=8,
        embedding_dim=8,
        dropout=0.0,
        max_target_length=8,
    )
    folder = save_checkpoint(model, tmp_path_factory.mktemp("tiny") / "checkpoint", metadata={"seed": 7})
    return model, folder, texts(model)


@pytest.fixture
def local_copy(tiny, tmp_path):
    """A copy of the tiny checkpoint folder that a test may damage."""
    return Path(shutil.copytree(tiny[1], tmp_path / "checkpoint"))


def head_files(hub, repo_id, branch="main"):
    repo = hub.state.repo(repo_id)
    return repo.commits[repo.branches[branch]].files


# --- Hub round trips --------------------------------------------------------------------------


def test_push_then_from_pretrained_gives_the_same_model(tiny, hub, hub_cache, hub_repo_id):
    model, _, expected = tiny
    sha = keras_attn_zoo.push_to_hub(model, f"hf://{hub_repo_id}", commit_message="Tiny model")

    repo = hub.state.repo(hub_repo_id)
    assert repo.branches["main"] == sha and repo.commits[sha].summary == "Tiny model"
    files = head_files(hub, hub_repo_id)
    assert {"config.json", WEIGHTS_FILE, METADATA_FILE, "README.md", "assets/source.spm.model"} <= set(files)
    card = files["README.md"].decode()
    assert yaml.safe_load(card.split("---\n")[1])["library_name"] == "keras"
    assert f'keras_attn_zoo.from_pretrained("hf://{hub_repo_id}")' in card

    loaded = keras_attn_zoo.from_pretrained(f"hf://{hub_repo_id}")
    assert list(Path(hub_cache).glob("models--test-org--repo-*"))  # it came through the (empty) test cache
    assert loaded.zoo_preset is None and loaded.zoo_metadata["parameters"] == model.count_params()
    assert_same_weights(loaded, model)
    assert texts(loaded) == expected


def test_revision_pins_an_older_push(tiny, hub, hub_cache, hub_repo_id, local_copy):
    model, _, _ = tiny
    first = keras_attn_zoo.push_to_hub(model, hub_repo_id)
    changed = load_checkpoint(local_copy)
    changed.set_weights([w + 0.5 for w in changed.get_weights()])
    second = keras_attn_zoo.push_to_hub(changed, hub_repo_id, commit_message="Changed weights")
    assert second != first

    assert_same_weights(keras_attn_zoo.from_pretrained(f"hf://{hub_repo_id}"), changed)
    pinned = keras_attn_zoo.from_pretrained(f"hf://{hub_repo_id}@{first}")
    assert_same_weights(pinned, model)


def test_push_to_a_branch(tiny, hub, hub_cache, hub_repo_id):
    model, _, _ = tiny
    sha = keras_attn_zoo.push_to_hub(model, f"hf://{hub_repo_id}@experiment", private=True)
    repo = hub.state.repo(hub_repo_id)
    assert repo.private and repo.branches["experiment"] == sha and repo.branches["main"] != sha
    assert_same_weights(keras_attn_zoo.from_pretrained(f"hf://{hub_repo_id}@experiment"), model)
    with pytest.raises(HubError, match="name the branch once"):
        keras_attn_zoo.push_to_hub(model, f"hf://{hub_repo_id}@experiment", branch="other")


def test_offline_mode_loads_from_the_cache(tiny, hub, hub_cache, hub_repo_id, monkeypatch):
    from huggingface_hub import constants

    model, _, _ = tiny
    sha = keras_attn_zoo.push_to_hub(model, hub_repo_id)
    keras_attn_zoo.from_pretrained(f"hf://{hub_repo_id}")  # fills the cache
    requests_before = len(hub.state.requests)

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert_same_weights(keras_attn_zoo.from_pretrained(f"hf://{hub_repo_id}"), model)
    assert_same_weights(keras_attn_zoo.from_pretrained(f"hf://{hub_repo_id}@{sha}"), model)
    assert len(hub.state.requests) == requests_before
    with pytest.raises(HubError, match="HF_HUB_OFFLINE=1"):
        keras_attn_zoo.from_pretrained(f"hf://{hub_repo_id}@other-branch")


def test_card_of_a_preset_model_and_a_given_card(tiny, hub, hub_cache, hub_repo_id, local_copy):
    name = presets.preset_names()[0]
    model = load_checkpoint(local_copy)
    model.zoo_metadata["name"] = name  # as the training of the preset's recipe records it
    keras_attn_zoo.push_to_hub(model, hub_repo_id)
    card = head_files(hub, hub_repo_id)["README.md"].decode()
    assert card.startswith("---\n") and f"\n# {name}\n" in card
    assert f'keras_attn_zoo.from_pretrained("{name}")' in card
    assert json.loads(head_files(hub, hub_repo_id)[METADATA_FILE])["name"] == name

    keras_attn_zoo.push_to_hub(model, hub_repo_id, card="# Hand-written card\n")
    assert head_files(hub, hub_repo_id)["README.md"] == b"# Hand-written card\n"


@pytest.mark.parametrize("name", presets.preset_names())
def test_preset_name_loads_its_checkpoint(name, tiny, hub, hub_cache, local_copy, monkeypatch):
    """Every preset: the bundled checkpoint if the package has one, else its Hub repository."""
    bundled = presets.bundled_checkpoint(name)
    if bundled is not None:
        model = keras_attn_zoo.from_pretrained(name)
        assert model.zoo_preset == name and model.target_tokenizer is not None  # a captioner has no source one
        assert model.count_params() == model.zoo_metadata["parameters"]
        return
    # Nothing bundled: the preset's hub_repo (on the test Hub) is downloaded.
    tiny_model = tiny[0]
    keras_attn_zoo.push_to_hub(tiny_model, presets.get_preset(name)["hub_repo"])
    model = keras_attn_zoo.from_pretrained(name)
    assert model.zoo_preset == name
    assert_same_weights(model, tiny_model)
    # A bundled folder comes first, without asking the Hub.
    monkeypatch.setattr(presets, "bundled_checkpoint", lambda preset: local_copy if preset == name else None)
    requests_before = len(hub.state.requests)
    assert keras_attn_zoo.from_pretrained(name).zoo_preset == name
    assert len(hub.state.requests) == requests_before


def test_keras_own_hf_save_and_load_of_seq2seq(tiny, hub, hub_repo_id):
    """`model.save("hf://...")` and, in a fresh process that imports only keras_attn_zoo.models
    (which registers Seq2Seq with Keras), `keras.saving.load_model("hf://...")`."""
    model, _, expected = tiny
    model.save(f"hf://{hub_repo_id}")
    files = head_files(hub, hub_repo_id)
    assert b'"registered_name": "keras_attn_zoo>Seq2Seq"' in files["config.json"]
    assert "assets/source.spm.model" in files  # the tokenizers travel as Keras assets

    code = (
        "import json, sys, keras, numpy as np, keras_attn_zoo.models\n"
        f"model = keras.saving.load_model('hf://{hub_repo_id}')\n"
        "sums = [float(np.sum(w, dtype='float64')) for w in model.get_weights()]\n"
        f"texts = [p.text for p in model.predict_texts({SENTENCES!r})]\n"
        "print(json.dumps([type(model).__module__ + '.' + type(model).__name__, sums, texts]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    kind, sums, outputs = json.loads(result.stdout.strip().splitlines()[-1])
    assert kind == "keras_attn_zoo.models.seq2seq.Seq2Seq"
    assert sums == [float(np.sum(w, dtype="float64")) for w in model.get_weights()]
    assert outputs == expected


# --- Local folders and names ------------------------------------------------------------------


def test_local_folder(tiny):
    model, folder, _ = tiny
    loaded = keras_attn_zoo.from_pretrained(str(folder))
    assert_same_weights(loaded, model)
    assert_same_weights(keras_attn_zoo.from_pretrained(folder), model)  # a Path works too


def test_unknown_name_lists_close_presets():
    with pytest.raises(UnknownNameError) as error:
        keras_attn_zoo.from_pretrained("bible_en_es_bahdanua")
    message = str(error.value)
    assert "\n" not in message and "Unknown preset 'bible_en_es_bahdanua'" in message
    assert "Did you mean 'bible_en_es_bahdanau'" in message and "hf://" in message


@pytest.mark.parametrize(
    "reference, match",
    [
        ("test-org/not-a-folder", r"does not exist.*write 'hf://test-org/not-a-folder'"),
        ("./missing", "does not exist"),
        (str(Path(__file__)), "a file"),
    ],
)
def test_path_that_is_not_a_folder(reference, match):
    with pytest.raises(CheckpointError, match=match):
        keras_attn_zoo.from_pretrained(reference)


# --- Damaged checkpoints: an error, never a silently wrong model ------------------------------


def test_truncated_weights(local_copy):
    weights = local_copy / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        keras_attn_zoo.from_pretrained(local_copy)
    rehash(local_copy, WEIGHTS_FILE)  # even with a matching hash, a truncated HDF5 file is refused
    with pytest.raises(CheckpointError, match="Could not load"):
        keras_attn_zoo.from_pretrained(local_copy)


def test_flipped_byte_in_weights(local_copy):
    weights = local_copy / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        keras_attn_zoo.from_pretrained(local_copy)


def test_weights_of_another_shape(local_copy):
    from keras_attn_zoo.recipes import translation

    other = translation(source_vocab_size=100, target_vocab_size=100, units=12, embedding_dim=8)
    other.save_weights(str(local_copy / WEIGHTS_FILE))
    rehash(local_copy, WEIGHTS_FILE)
    with pytest.raises(CheckpointError, match="Could not load"):
        keras_attn_zoo.from_pretrained(local_copy)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda c: c.update({"class": "Functional"}), r"names class 'Functional'; expected one of \['Captioner', 'Seq2Seq'\]"),
        (lambda c: c.update({"class": "os.system"}), "names class 'os.system'"),
        (lambda c: c["config"].update({"activation_fn": "eval"}), r"arguments \['activation_fn'\]"),
        (lambda c: c["config"].update({"attention": {"class_name": "Lambda"}}), "must be a plain value"),
        (lambda c: c.update({"format": "keras"}), "not a keras-attn-zoo checkpoint config"),
    ],
)
def test_config_that_is_not_allowed(local_copy, change, match):
    path = local_copy / "config.json"
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=f"corrupt or truncated|{match}"):  # the hash catches any edit
        keras_attn_zoo.from_pretrained(local_copy)
    rehash(local_copy, "config.json")  # and the checks catch it when the hash was updated too
    with pytest.raises(CheckpointError, match=match):
        keras_attn_zoo.from_pretrained(local_copy)


# --- revision=, cache_dir=, token= as huggingface_hub users write them -------------------------


def test_revision_keyword(tiny, hub, hub_cache, hub_repo_id, local_copy, tmp_path):
    model, _, _ = tiny
    first = keras_attn_zoo.push_to_hub(model, hub_repo_id)
    changed = load_checkpoint(local_copy)
    changed.set_weights([w + 0.5 for w in changed.get_weights()])
    keras_attn_zoo.push_to_hub(changed, hub_repo_id)

    assert_same_weights(keras_attn_zoo.from_pretrained(f"hf://{hub_repo_id}", revision=first), model)
    assert_same_weights(keras_attn_zoo.from_pretrained(hub_repo_id, revision=first), model)  # huggingface_hub's way
    assert_same_weights(keras_attn_zoo.from_pretrained(f"hf://{hub_repo_id}@{first}", revision=first), model)
    cache = tmp_path / "own-cache"
    loaded = keras_attn_zoo.from_pretrained(f"hf://{hub_repo_id}", revision="main", cache_dir=cache, token="hf_x")
    assert_same_weights(loaded, changed)
    assert list(cache.glob("models--test-org--repo-*/snapshots/*/model.weights.h5"))

    with pytest.raises(HubError, match="name the revision once"):
        keras_attn_zoo.from_pretrained(f"hf://{hub_repo_id}@main", revision=first)
    with pytest.raises(HubError, match="a revision names a Hub commit"):
        keras_attn_zoo.from_pretrained(local_copy, revision="v1")
    with pytest.raises(HubError, match=r"Received: revision=''"):
        keras_attn_zoo.from_pretrained(hub_repo_id, revision="")


def test_revision_of_a_preset_loads_its_hub_repository(tiny, hub, hub_cache):
    name = presets.preset_names()[0]
    model, _, _ = tiny
    sha = keras_attn_zoo.push_to_hub(model, presets.get_preset(name)["hub_repo"])
    loaded = keras_attn_zoo.from_pretrained(name, revision=sha)
    assert loaded.zoo_preset == name
    assert_same_weights(loaded, model)


# --- The staging folder of a push -------------------------------------------------------------


def staging_folders(root):
    from keras_attn_zoo.pretrained import PUSH_STAGING_PREFIX

    return sorted(p.name for p in Path(root).glob(PUSH_STAGING_PREFIX + "*"))


def test_failed_push_leaves_no_staging_folder(tiny, hub, silent_hub, tmp_path, monkeypatch):
    import tempfile

    from huggingface_hub import constants

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(constants, "ENDPOINT", silent_hub.endpoint)
    seen = []
    real_upload = keras_attn_zoo.hub.upload_folder

    def upload(folder, *args, **kwargs):
        seen.append(Path(folder))
        assert Path(folder).is_relative_to(tmp_path) and (Path(folder) / WEIGHTS_FILE).is_file()
        return real_upload(folder, *args, **kwargs)

    monkeypatch.setattr(keras_attn_zoo.hub, "upload_folder", upload)
    with pytest.raises(HubError, match="ReadTimeout"):
        keras_attn_zoo.push_to_hub(tiny[0], "test-org/silent", timeout=0.2, attempts=1)
    assert seen and staging_folders(tmp_path) == []


def test_staging_folders_of_dead_processes_are_removed(tmp_path, monkeypatch):
    import tempfile

    from keras_attn_zoo.pretrained import PUSH_STAGING_PREFIX
    from keras_attn_zoo.staging import scratch_folder

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"{PUSH_STAGING_PREFIX}{int(dead.stdout)}-abc123"  # left by a `kill -9`
    (stale / "checkpoint").mkdir(parents=True)
    alive = tmp_path / f"{PUSH_STAGING_PREFIX}{os.getppid()}-def456"  # another push, still running
    alive.mkdir()
    with scratch_folder(PUSH_STAGING_PREFIX) as folder:
        assert staging_folders(tmp_path) == sorted([alive.name, folder.name])
    assert staging_folders(tmp_path) == [alive.name]
