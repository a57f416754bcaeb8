"""keras-attn-zoo: Bahdanau and Luong attention, an attention decoder and a model zoo for Keras 3.

Importing the package is cheap: Keras and TensorFlow load only when a submodule that needs them
is used (or the first model is loaded), so `attn-zoo --help` and `attn-zoo list` stay fast.

    import keras_attn_zoo

    keras_attn_zoo.list_presets()                              # the named, trained models
    model = keras_attn_zoo.from_pretrained("bible_en_es_bahdanau")
    keras_attn_zoo.push_to_hub(model, "my-org/my-model")       # -> the commit sha
"""

__version__ = "0.1.0"

from keras_attn_zoo.presets import get_preset, list_presets  # noqa: E402
from keras_attn_zoo.pretrained import from_pretrained, push_to_hub  # noqa: E402

__all__ = ["__version__", "from_pretrained", "get_preset", "list_presets", "push_to_hub"]
