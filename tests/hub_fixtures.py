"""Fixtures that point huggingface_hub (and Keras' `hf://` support) at a local test Hub.

huggingface_hub reads `HF_ENDPOINT` when it is first imported, and `import keras` imports it, so
`configure_test_hub()` must run before anything imports keras or huggingface_hub: at the top of
`tests/conftest.py`, before its other imports:

    from hub_fixtures import configure_test_hub, hub, hub_cache, hub_repo_id  # noqa: F401

    configure_test_hub()

It starts one `tests/hub_server.py` server for the session and sets `HF_ENDPOINT` to it, `HF_HOME`
and `HF_HUB_CACHE` to a temporary folder, `HF_TOKEN` to a dummy token, and turns telemetry,
progress bars and offline mode off. No test can reach huggingface.co.
"""

import atexit
import os
import shutil
import socket
import sys
import tempfile
import threading
import uuid

import pytest

from hub_server import HubServer

TEST_TOKEN = "hf_test_token"
_session = {}


def configure_test_hub():
    """Start the session's test Hub and point huggingface_hub at it; returns the `HubServer`."""
    if "server" in _session:
        return _session["server"]
    if "huggingface_hub" in sys.modules:
        raise RuntimeError(
            "huggingface_hub was imported before configure_test_hub() (keras imports it): it would keep "
            "its default endpoint. Call configure_test_hub() at the top of tests/conftest.py."
        )
    home = tempfile.mkdtemp(prefix="attn-zoo-hf-home-")
    server = HubServer().start()
    os.environ.update(
        HF_ENDPOINT=server.endpoint,
        HF_HOME=home,
        HF_HUB_CACHE=os.path.join(home, "hub"),
        HF_TOKEN=TEST_TOKEN,
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_HUB_DISABLE_UPDATE_CHECK="1",
    )
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT"):
        os.environ.pop(name, None)
    _session.update(server=server, home=home)
    atexit.register(_stop)
    return server


def _stop():
    _session["server"].stop()
    shutil.rmtree(_session["home"], ignore_errors=True)


@pytest.fixture(scope="session")
def hub():
    """The session's test Hub (`HubServer`): `.endpoint`, and `.state` with its repos and requests."""
    server = configure_test_hub()
    from huggingface_hub import constants

    assert constants.ENDPOINT == server.endpoint, "huggingface_hub was imported before configure_test_hub()"
    return server


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hub cache for this test; also the default cache (what Keras' hf:// loading uses)."""
    from huggingface_hub import constants

    cache = tmp_path / "hub-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture
def hub_repo_id(hub):
    """A repository id no other test uses: the test Hub lives for the whole session."""
    return f"test-org/repo-{uuid.uuid4().hex[:10]}"


class SilentHub:
    """A server that accepts every connection and never answers: a Hub that hangs.

    `endpoint` is its URL; `connections` counts the connections accepted so far (each one is held
    open, unanswered, until `close()`).
    """

    def __init__(self):
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self.endpoint = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._held = []
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def connections(self):
        return len(self._held)

    def _accept(self):
        while not self._closed.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self._held.append(connection)

    def close(self):
        self._closed.set()
        self._socket.close()
        for connection in self._held:
            connection.close()


@pytest.fixture
def silent_hub():
    """A `SilentHub` for this test."""
    server = SilentHub()
    yield server
    server.close()
