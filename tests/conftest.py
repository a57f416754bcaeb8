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


# -- Shared by the CLI, captioning-CLI and demo tests ----------------------------------------------

TINY_CAPTIONS = ["a red dress on a white background", "a pair of blue jeans", "a black leather bag with a strap"] * 5


def tiny_captioner_checkpoint(folder):
    """A tiny untrained captioner checkpoint (64 px, 2x2 grid, word tokenizer) in `folder`; its path.

    The embeddings are scaled up so that its untrained captions differ from image to image.
    """
    from keras_attn_zoo.checkpoint import save_checkpoint
    from keras_attn_zoo.recipes import captioning
    from keras_attn_zoo.tokenizer import SubwordTokenizer

    tokenizer = SubwordTokenizer.train(TINY_CAPTIONS, vocab_size=18, model_type="word")
    model = captioning(tokenizer, image_size=64, units=16, embedding_dim=8, max_target_length=6)
    model.target_embedding.embeddings.assign(model.target_embedding.embeddings * 10.0)
    return save_checkpoint(model, folder, task="captioning", recipe="captioning")


@pytest.fixture(scope="module")
def loaded():
    """{reference: model} filled by the `cached` fixture across the module's tests."""
    return {}


@pytest.fixture
def cached(monkeypatch, loaded):
    """`from_pretrained` loads each reference once per module (errors are not cached)."""
    import keras_attn_zoo

    real = keras_attn_zoo.from_pretrained

    def from_pretrained(reference):
        if reference not in loaded:
            loaded[reference] = real(reference)
        return loaded[reference]

    monkeypatch.setattr(keras_attn_zoo, "from_pretrained", from_pretrained)
    return loaded
