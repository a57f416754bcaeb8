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
import sys
import tempfile
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
