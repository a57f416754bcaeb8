"""keras-attn-zoo: Bahdanau and Luong attention, an attention decoder and a model zoo for Keras 3.

Importing the package is cheap: Keras and TensorFlow load only when a submodule that needs them
is used, so `attn-zoo --help` and `attn-zoo list` stay fast.
"""

__version__ = "0.1.0"
