"""keras_attn_zoo.hub against the local test Hub (tests/hub_server.py, fixtures in tests/hub_fixtures.py)."""

import contextlib
import json
import logging
import os
import re
import socket

import numpy as np
import pytest

from keras_attn_zoo.errors import CheckpointError, HubError
from keras_attn_zoo.hub import download, parse_hub_uri, upload_folder


def make_folder(path, weights_seed=0, config=None):
    """A checkpoint-shaped folder: text files, a nested asset and a ~100 KB binary."""
    (path / "assets").mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config or {"units": 8}))
    (path / "metadata.json").write_text(json.dumps({"format": 1}))
    (path / "README.md").write_text("---\nlicense: apache-2.0\nlibrary_name: keras\n---\n# A test model\n")
    (path / "assets" / "vocab.txt").write_text("<pad>\n<s>\n</s>\nhello\n")
    (path / "model.weights.h5").write_bytes(np.random.default_rng(weights_seed).bytes(100_000))
    return path


def read_files(folder):
    """{relative posix path: bytes} of every file under `folder`."""
    folder = os.fspath(folder)
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                files[os.path.relpath(full, folder).replace(os.sep, "/")] = f.read()
    return files


def one_line(error):
    text = str(error.value)
    assert "\n" not in text, text
    return text


@contextlib.contextmanager
def endpoint(monkeypatch, url):
    """Point new HfApi objects at `url` (downloads then find nothing there)."""
    from huggingface_hub import constants

    with monkeypatch.context() as patch:
        patch.setattr(constants, "ENDPOINT", url)
        yield


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- hf:// URIs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("hf://org/name", ("org/name", None)),
        ("hf://org/name@v1", ("org/name", "v1")),
        ("hf://org/name@refs/pr/3", ("org/name", "refs/pr/3")),
        ("hf://org/name@feature%2Fsmall", ("org/name", "feature/small")),
        ("hf://org/name@" + "0123456789abcdef" * 2 + "01234567", ("org/name", "0123456789abcdef" * 2 + "01234567")),
    ],
)
def test_parse_hub_uri(uri, expected):
    assert parse_hub_uri(uri) == expected


@pytest.mark.parametrize(
    "uri, reason",
    [
        ("org/name", "expected 'hf://"),
        ("https://huggingface.co/org/name", "expected 'hf://"),
        ("hf://", "Empty body"),
        ("hf://name", "namespace/name"),
        ("hf://org/name@", "Empty revision"),
        ("hf://org/name/model.weights.h5", "with a path 'model.weights.h5'"),
        ("hf://org/name@feature/small", "with a path 'small'"),
        ("hf://datasets/org/name", "a dataset repository"),
        ("hf://org/bad name", "alphanumeric"),
    ],
)
def test_parse_hub_uri_rejects_malformed(uri, reason):
    with pytest.raises(HubError) as error:
        parse_hub_uri(uri)
    assert f"Received: uri={uri!r}" in one_line(error)
    assert reason in str(error.value)


# --- push and download ------------------------------------------------------------------------


def test_push_then_download_gives_identical_files(hub, hub_cache, hub_repo_id, tmp_path):
    folder = make_folder(tmp_path / "ckpt")
    sha = upload_folder(folder, hub_repo_id)

    repo = hub.state.repo(hub_repo_id)
    assert re.fullmatch(r"[0-9a-f]{40}", sha) and repo.branches["main"] == sha
    assert repo.commits[sha].summary == "Upload ckpt with keras-attn-zoo"
    local = download(hub_repo_id)
    assert os.path.commonpath([local, hub_cache]) == str(hub_cache)
    downloaded = read_files(local)
    assert downloaded.pop(".gitattributes")  # the Hub adds it to every new repository
    assert downloaded == read_files(folder)


def test_push_of_unchanged_folder_makes_no_commit(hub, hub_repo_id, tmp_path):
    folder = make_folder(tmp_path / "ckpt")
    first = upload_folder(folder, hub_repo_id)
    assert upload_folder(folder, hub_repo_id) == first
    assert len(hub.state.repo(hub_repo_id).commits) == 2  # the Hub's initial commit and ours


def test_revision_pins_an_older_commit(hub, hub_cache, hub_repo_id, tmp_path):
    folder = make_folder(tmp_path / "ckpt", config={"units": 8})
    first = upload_folder(folder, hub_repo_id)
    first_files = read_files(folder)
    (folder / "config.json").write_text(json.dumps({"units": 16}))
    (folder / "assets" / "vocab.txt").unlink()
    second = upload_folder(folder, hub_repo_id, commit_message="Wider")
    assert second != first

    latest = read_files(download(hub_repo_id))
    assert json.loads(latest["config.json"]) == {"units": 16}
    assert "assets/vocab.txt" not in latest  # a push mirrors the folder
    repo_id, revision = parse_hub_uri(f"hf://{hub_repo_id}@{first}")
    pinned = read_files(download(repo_id, revision))
    pinned.pop(".gitattributes")
    assert pinned == first_files


def test_private_branch_and_commit_message_reach_the_hub(hub, hub_cache, hub_repo_id, tmp_path):
    folder = make_folder(tmp_path / "ckpt")
    sha = upload_folder(folder, hub_repo_id, private=True, branch="experiment", commit_message="Train 3 epochs")

    repo = hub.state.repo(hub_repo_id)
    assert repo.private
    assert repo.branches["experiment"] == sha
    assert repo.commits[sha].summary == "Train 3 epochs"
    assert repo.commits[repo.branches["main"]].parent is None  # main still holds only the initial commit
    downloaded = read_files(download(hub_repo_id, "experiment"))
    downloaded.pop(".gitattributes")
    assert downloaded == read_files(folder)
    with pytest.raises(HubError) as error:
        download(hub_repo_id, "experiment", token=False)
    assert f"Hub repository '{hub_repo_id}' not found" in one_line(error)
    assert "private" in str(error.value)


def test_private_push_to_a_public_repo_fails(hub, hub_repo_id, tmp_path):
    folder = make_folder(tmp_path / "ckpt")
    upload_folder(folder, hub_repo_id)
    (folder / "config.json").write_text("{}")
    with pytest.raises(HubError) as error:
        upload_folder(folder, hub_repo_id, private=True)
    assert "already exists and is public" in one_line(error)
    assert len(hub.state.repo(hub_repo_id).commits) == 2


def test_upload_of_a_missing_folder_fails(hub, hub_repo_id, tmp_path):
    with pytest.raises(CheckpointError) as error:
        upload_folder(tmp_path / "missing", hub_repo_id)
    assert "missing" in one_line(error)


@pytest.mark.parametrize("repo_id", ["no-namespace", "org/name/extra", "org/bad name"])
def test_invalid_repo_id(hub, repo_id, tmp_path):
    with pytest.raises(HubError) as error:
        download(repo_id)
    assert f"Received: repo_id={repo_id!r}" in one_line(error)
    with pytest.raises(HubError):
        upload_folder(make_folder(tmp_path / "ckpt"), repo_id)


# --- errors -----------------------------------------------------------------------------------


def test_unknown_repo(hub, hub_cache):
    with pytest.raises(HubError) as error:
        download("test-org/does-not-exist")
    assert f"Hub repository 'test-org/does-not-exist' not found on {hub.endpoint}" in one_line(error)


@pytest.mark.parametrize("revision", ["no-such-branch", "f" * 40])
def test_unknown_revision(hub, hub_cache, hub_repo_id, tmp_path, revision):
    upload_folder(make_folder(tmp_path / "ckpt"), hub_repo_id)
    with pytest.raises(HubError) as error:
        download(hub_repo_id, revision)
    assert f"Revision '{revision}' not found in Hub repository '{hub_repo_id}'" in one_line(error)


def test_offline_mode_reads_the_cache(hub, hub_cache, hub_repo_id, tmp_path, monkeypatch):
    from huggingface_hub import constants

    folder = make_folder(tmp_path / "ckpt")
    sha = upload_folder(folder, hub_repo_id)
    online = download(hub_repo_id)
    requests_before = len(hub.state.requests)

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert download(hub_repo_id) == online
    assert download(hub_repo_id, sha) == online
    assert len(hub.state.requests) == requests_before  # nothing was asked of the Hub
    with pytest.raises(HubError) as error:
        download(hub_repo_id, "other-branch")
    message = one_line(error)
    assert f"'{hub_repo_id}' at revision 'other-branch'" in message and "HF_HUB_OFFLINE=1" in message


def test_unreachable_endpoint_fails_with_one_line(hub, hub_cache, monkeypatch):
    closed = f"http://127.0.0.1:{free_port()}"
    with endpoint(monkeypatch, closed), pytest.raises(HubError) as error:
        download("test-org/anything", "0" * 40)  # a commit sha: huggingface_hub alone would retry ~25 s
    message = one_line(error)
    assert f"'test-org/anything' at revision '{'0' * 40}' on {closed}" in message
    assert "ConnectError" in message and "not complete in the cache" in message


def test_unreachable_endpoint_serves_the_cache(hub, hub_cache, hub_repo_id, tmp_path, monkeypatch, caplog):
    upload_folder(make_folder(tmp_path / "ckpt"), hub_repo_id)
    online = download(hub_repo_id)
    with endpoint(monkeypatch, f"http://127.0.0.1:{free_port()}"), caplog.at_level(logging.WARNING):
        assert download(hub_repo_id) == online
    assert "did not answer" in caplog.text


def test_hub_outage_is_not_retried(hub, hub_cache, hub_repo_id, tmp_path):
    sha = upload_folder(make_folder(tmp_path / "ckpt"), hub_repo_id)
    requests_before = len(hub.state.requests)
    with hub.state.outage(503):
        with pytest.raises(HubError) as error:
            download(hub_repo_id, sha)
    assert "HTTP 503" in one_line(error)
    # One metadata request, no retries: huggingface_hub's own listing would retry 5 times with backoff.
    assert [r.path for r in hub.state.requests[requests_before:]] == [f"/api/models/{hub_repo_id}/revision/{sha}"]


def test_silent_endpoint_times_out(hub, hub_cache, monkeypatch):
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with endpoint(monkeypatch, url), pytest.raises(HubError) as error:
            download("test-org/anything", timeout=0.5)
    assert "ReadTimeout" in one_line(error)


def test_upload_to_a_silent_hub_fails_after_bounded_retries(hub, silent_hub, tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "ckpt")
    with endpoint(monkeypatch, silent_hub.endpoint), pytest.raises(HubError) as error:
        upload_folder(folder, "test-org/anything", timeout=0.2, attempts=2)
    message = one_line(error)
    assert f"Cannot push to 'test-org/anything' (branch 'main') on {silent_hub.endpoint}" in message
    assert "ReadTimeout" in message and "tried 2 times, 0.2 s per request" in message
    assert silent_hub.connections == 2  # one per attempt, then it stopped


def test_upload_timeout_from_the_environment(hub, silent_hub, tmp_path, monkeypatch):
    monkeypatch.setenv("ATTN_ZOO_UPLOAD_TIMEOUT", "0.2")
    with endpoint(monkeypatch, silent_hub.endpoint), pytest.raises(HubError) as error:
        upload_folder(make_folder(tmp_path / "ckpt"), "test-org/anything", attempts=1)
    assert "tried 1 times, 0.2 s per request" in one_line(error) and silent_hub.connections == 1
    monkeypatch.setenv("ATTN_ZOO_UPLOAD_TIMEOUT", "soon")
    with pytest.raises(HubError, match="ATTN_ZOO_UPLOAD_TIMEOUT='soon'; expected a number of seconds"):
        upload_folder(make_folder(tmp_path / "ckpt"), "test-org/anything")


def test_upload_retries_a_hub_outage_then_succeeds(hub, hub_repo_id, tmp_path, monkeypatch):
    from keras_attn_zoo import hub as zoo_hub

    folder = make_folder(tmp_path / "ckpt")
    waits = []

    def sleep(seconds):  # the Hub comes back while the client waits
        waits.append(seconds)
        hub.state.outage_status = None

    monkeypatch.setattr(zoo_hub.time, "sleep", sleep)
    hub.state.outage_status = 503
    try:
        sha = upload_folder(folder, hub_repo_id)  # the first attempt meets the outage, the second pushes
    finally:
        hub.state.outage_status = None
    assert waits == [1.0] and hub.state.repo(hub_repo_id).branches["main"] == sha


def test_upload_leaves_the_client_timeout_as_it_was(hub, hub_repo_id, tmp_path):
    from huggingface_hub import get_session

    before = get_session().timeout
    upload_folder(make_folder(tmp_path / "ckpt"), hub_repo_id, timeout=7)
    assert get_session().timeout == before


# --- Keras models -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model():
    import keras

    import keras_attn_zoo.layers as layers

    query, memory = keras.Input((3, 4)), keras.Input((5, 6))
    context, weights = layers.BahdanauAttention(4, name="attention")([query, memory], return_attention_scores=True)
    model = keras.Model([query, memory], [keras.layers.Dense(2)(context), weights])
    rng = np.random.default_rng(0)
    inputs = [rng.random((2, 3, 4), dtype="float32"), rng.random((2, 5, 6), dtype="float32")]
    return model, inputs


def test_keras_model_folder_round_trips_through_the_hub(hub, hub_cache, hub_repo_id, tmp_path, tiny_model):
    import keras

    from keras_attn_zoo.layers import BahdanauAttention

    model, inputs = tiny_model
    folder = tmp_path / "model"
    keras.saving.save_model(model, folder, zipped=False)  # config.json, model.weights.h5, metadata.json
    upload_folder(folder, hub_repo_id)
    loaded = keras.saving.load_model(download(hub_repo_id))

    assert isinstance(loaded.get_layer("attention"), BahdanauAttention)
    for expected, actual in zip(model.predict(inputs, verbose=0), loaded.predict(inputs, verbose=0)):
        np.testing.assert_allclose(actual, expected, rtol=1e-6)


def test_keras_own_hf_save_and_load(hub, hub_cache, hub_repo_id, tiny_model):
    import keras

    from keras_attn_zoo.layers import BahdanauAttention

    model, inputs = tiny_model
    model.save(f"hf://{hub_repo_id}")  # Keras 3.15: an unzipped model folder plus a model card

    repo = hub.state.repo(hub_repo_id)
    head = repo.commits[repo.branches["main"]]
    assert sorted(head.files) == [".gitattributes", "README.md", "config.json", "metadata.json", "model.weights.h5"]
    assert head.summary == "Save model using Keras." and not repo.private
    assert b"library_name: keras" in head.files["README.md"]
    assert b'"registered_name": "keras_attn_zoo>BahdanauAttention"' in head.files["config.json"]
    loaded = keras.saving.load_model(f"hf://{hub_repo_id}")
    assert isinstance(loaded.get_layer("attention"), BahdanauAttention)
    for expected, actual in zip(model.predict(inputs, verbose=0), loaded.predict(inputs, verbose=0)):
        np.testing.assert_allclose(actual, expected, rtol=1e-6)
