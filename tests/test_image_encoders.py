"""`encoders.build_image_encoder`: EfficientNet-Lite0 or any keras.applications backbone by name."""

import numpy as np
import pytest

from keras_attn_zoo.encoders import build_image_encoder
from keras_attn_zoo.errors import CheckpointError, DataError

pytestmark = pytest.mark.backend_agnostic


def test_a_keras_applications_backbone_by_name_with_random_weights():
    encoder = build_image_encoder("mobilenet_v2", None, image_size=64)
    assert encoder.output_shape == (None, 2, 2, 1280)
    pixels = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3)).astype("uint8")
    assert np.asarray(encoder(pixels)).shape == (2, 2, 2, 1280)
    # The class name works too, and so does any spelling of it.
    assert build_image_encoder("MobileNetV2", None, image_size=64).output_shape == (None, 2, 2, 1280)


def test_a_weights_file_gives_the_same_features(tmp_path):
    first = build_image_encoder("MobileNetV2", None, image_size=64)
    path = tmp_path / "backbone.weights.h5"
    first.layers[-1].save_weights(path)  # the backbone itself, without the preprocessing wrapper
    second = build_image_encoder("MobileNetV2", str(path), image_size=64)
    pixels = np.random.default_rng(1).integers(0, 256, (1, 64, 64, 3)).astype("uint8")
    np.testing.assert_allclose(np.asarray(second(pixels)), np.asarray(first(pixels)), rtol=1e-5, atol=1e-5)


def test_imagenet_weights_of_keras_applications_are_one_line_not_a_download():
    with pytest.raises(DataError, match=r"^keras.applications.MobileNetV2 ImageNet weights download from the internet") as info:
        build_image_encoder("mobilenet_v2", "imagenet", image_size=64)
    assert "\n" not in str(info.value) and "efficientnet_lite0" in str(info.value)


def test_unknown_encoder_names_the_closest_and_a_missing_weights_file_is_one_line(tmp_path):
    with pytest.raises(DataError, match=r"Unknown image encoder 'mobilenet_v9'\. Did you mean .*mobilenetv2"):
        build_image_encoder("mobilenet_v9", None)
    with pytest.raises(CheckpointError, match=r"no such file"):
        build_image_encoder("mobilenet_v2", str(tmp_path / "missing.weights.h5"), image_size=64)


def test_the_captioning_recipe_reads_grid_and_channels_off_the_encoder():
    from keras_attn_zoo.recipes import captioning

    model = captioning(vocab_size=20, encoder="mobilenet_v2", encoder_weights=None, image_size=96, units=8, embedding_dim=4)
    assert (model.feature_grid, model.feature_channels) == (3, 1280)
    features = model.encode_images(np.zeros((1, 96, 96, 3), "uint8"))
    assert features.shape == (1, 9, 1280)
    assert model.generate(features, max_length=3)["token_ids"].shape == (1, 3)
    with pytest.raises(ValueError, match="feature_grid"):
        captioning(vocab_size=20, feature_grid=4)


def test_feature_layer_taps_an_earlier_finer_grid():
    full = build_image_encoder("efficientnet_lite0", None, image_size=64)
    tapped = build_image_encoder("efficientnet_lite0", None, image_size=64, feature_layer="block10_add")
    assert full.output_shape == (None, 2, 2, 1280) and tapped.output_shape == (None, 4, 4, 112)
    assert build_image_encoder("mobilenet_v2", None, image_size=64, feature_layer="block_13_expand").output_shape[1:3] == (4, 4)
    with pytest.raises(DataError, match=r"has no layer 'block10_ad'\. Did you mean 'block10_add'"):
        build_image_encoder("efficientnet_lite0", None, image_size=64, feature_layer="block10_ad")


def test_a_captioner_on_a_tapped_grid_saves_and_loads_it(tmp_path):
    from keras_attn_zoo.checkpoint import load_checkpoint, save_checkpoint
    from keras_attn_zoo.recipes import captioning

    model = captioning(vocab_size=20, image_size=64, feature_layer="block10_add", units=8, embedding_dim=4)
    assert (model.feature_grid, model.feature_channels) == (4, 112)
    pixels = np.random.default_rng(2).integers(0, 256, (1, 64, 64, 3)).astype("uint8")
    loaded = load_checkpoint(save_checkpoint(model, tmp_path / "ckpt", task="captioning", recipe="captioning"))
    assert loaded.feature_layer == "block10_add"
    np.testing.assert_allclose(loaded.encode_images(pixels), model.encode_images(pixels), rtol=1e-5, atol=1e-5)
