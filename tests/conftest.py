"""Shared test setup: quiet, deterministic TensorFlow / Keras on a small CPU machine."""

import os

# Before anything imports keras (and with it the backend): no C++ log noise. oneDNN stays on, as
# users run TensorFlow: the tests hold with its rounding.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Before anything imports keras (which imports huggingface_hub, which reads HF_ENDPOINT once):
# start the local test Hub (tests/hub_server.py) and point huggingface_hub at it, so no test can
# reach huggingface.co. Also registers the fixtures `hub`, `hub_cache`, `hub_repo_id` and `silent_hub`.
from hub_fixtures import configure_test_hub, hub, hub_cache, hub_repo_id, silent_hub  # noqa: E402,F401

configure_test_hub()

import keras  # noqa: E402
import pytest  # noqa: E402

SEED = 1234


def seed_keras(seed=SEED):
    """Seed Python, NumPy and the backend, so weight initialisation and dropout repeat."""
    keras.utils.set_random_seed(seed)


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same random state; returns the seed it used."""
    seed_keras(SEED)
    return SEED
