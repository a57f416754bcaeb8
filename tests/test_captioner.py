"""`Captioner` (Show, Attend and Tell): training, search, checkpoints, bad images and the attention figure.

Tiny captioners (64-px images: EfficientNet-Lite0 gives a 2x2 grid of 1280 channels; 16 units)
keep the module fast on 2 CPU cores. Images are written per module by Pillow.
"""

import json

import keras
import numpy as np
import pytest
from keras import ops
from PIL import Image

from keras_attn_zoo.images import decode_image, load_image
from keras_attn_zoo.models.encoder_decoder import BOS_ID, EOS_ID

CAPTIONS = [
    "a red dress on a white background",
    "a pair of blue jeans",
    "a black leather bag with a strap",
    "white shoes on a wooden table",
    "a green shirt with long sleeves",
] * 4
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def tiny_captioner(tokenizer, **options):
    from keras_attn_zoo.recipes import captioning

    options = {"image_size": 64, "units": 16, "embedding_dim": 8, "max_target_length": 8, **options}
    return captioning(tokenizer, **options)


@pytest.fixture(scope="module")
def tokenizer():
    from keras_attn_zoo.tokenizer import SubwordTokenizer

    return SubwordTokenizer.train(CAPTIONS, vocab_size=24, model_type="word")


@pytest.fixture(scope="module")
def model(tokenizer):
    keras.utils.set_random_seed(7)
    captioner = tiny_captioner(tokenizer)
    # Fresh tied embeddings give near-uniform logits; larger ones make outputs that float rounding
    # does not decide (and not all the same word).
    captioner.target_embedding.embeddings.assign(captioner.target_embedding.embeddings * 10.0)
    return captioner


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """{kind: path} of good and bad images, each kind of trouble a user has sent."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = {}

    def save(name, image, **kwargs):
        paths[name.split(".")[0]] = folder / name
        image.save(folder / name, **kwargs)

    save("photo.png", Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)))
    save("photo2.jpg", Image.fromarray(rng.integers(0, 255, (50, 30, 3), dtype=np.uint8)))
    save("gray.png", Image.fromarray(rng.integers(0, 255, (30, 30), dtype=np.uint8), mode="L"))
    save("palette.png", Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).convert("P"))
    rgba = np.zeros((32, 32, 4), np.uint8)  # black clip art on a transparent background
    rgba[8:24, 8:24] = [0, 0, 0, 255]
    save("rgba.png", Image.fromarray(rgba, mode="RGBA"))
    sixteen = (rng.integers(0, 65535, (24, 24))).astype(np.uint16)
    save("gray16.png", Image.fromarray(sixteen))
    save("cmyk.jpg", Image.new("CMYK", (24, 16), (255, 0, 0, 0)))  # cyan
    frames = [Image.new("RGB", (20, 20), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    save("animated.gif", frames[0], save_all=True, append_images=frames[1:], duration=100, loop=0)
    (folder / "not_an_image.png").write_text("This is a text file with a .png name\n")
    paths["not_an_image"] = folder / "not_an_image.png"
    whole = (folder / "photo.png").read_bytes()
    (folder / "truncated.png").write_bytes(whole[: len(whole) // 2])
    paths["truncated"] = folder / "truncated.png"
    (folder / "empty.png").write_bytes(b"")
    paths["empty"] = folder / "empty.png"
    # A real 20,000 x 30,000 1-bit PNG (600 M pixels): a few KB on disk, 2.4 GB as RGBA if decoded.
    save("huge.png", Image.new("1", (20_000, 30_000), 1), optimize=True)
    paths["missing"] = folder / "missing.png"
    return paths


GOOD = ["photo", "photo2", "gray", "palette", "rgba", "gray16", "cmyk", "animated"]
BAD = {
    "not_an_image": "not an image Pillow can read",
    "truncated": "damaged or truncated PNG",
    "empty": "empty file",
    "huge": "more than max_pixels",
    "missing": "no such file",
}


# -- Training and search -------------------------------------------------------------------------


@pytest.mark.backend_agnostic
def test_fit_on_random_features_decreases_the_loss(tokenizer):
    model = tiny_captioner(tokenizer, encoder_weights=None, dropout=0.0)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    rng = np.random.default_rng(0)
    features = rng.random((8, model.feature_grid**2, model.feature_channels), dtype=np.float32)
    ids = [tokenizer.encode([CAPTIONS[i]])[0] for i in range(8)]
    width = max(len(x) for x in ids) + 1
    inputs = np.zeros((8, width), "int32")
    labels = np.zeros((8, width), "int32")
    for row, x in enumerate(ids):
        sequence = [BOS_ID] + list(x) + [EOS_ID]
        inputs[row, : len(sequence) - 1] = sequence[:-1]
        labels[row, : len(sequence) - 1] = sequence[1:]
    history = model.fit({"features": features, "target_ids": inputs}, labels, epochs=40, batch_size=8, verbose=0)
    # The total loss holds Xu et al.'s attention penalty, logged on its own: the words' part of it
    # (the cross-entropy) is what must fall most.
    losses = np.array(history.history["loss"])
    cross_entropy = losses - np.array(history.history["doubly_stochastic_loss"])
    assert losses[-1] < losses[0] and cross_entropy[-1] < 0.75 * cross_entropy[0], history.history


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("options", [{}, {"position_embedding": True}, {"position_embedding": True, "placement": "luong", "input_feeding": False}, {"train_encoder": True}])
def test_parameter_count_matches_the_built_captioner(tokenizer, options):
    from keras_attn_zoo.model_size import parameter_count

    model = tiny_captioner(tokenizer, encoder_weights=None, **options)
    assert parameter_count(model.get_config(), "Captioner") == model.count_params()


@pytest.mark.backend_agnostic
def test_position_embedding_tells_grid_positions_apart(tokenizer):
    """The same feature vector at every position: a memory that differs by position only with the option."""
    same = np.ones((1, 4, 1280), np.float32)
    for with_positions in (False, True):
        model = tiny_captioner(tokenizer, encoder_weights=None, position_embedding=with_positions)
        memory, _ = model._encode(ops.convert_to_tensor(same), training=False)
        memory = ops.convert_to_numpy(memory)[0]
        spread = np.abs(memory - memory[:1]).max()
        assert (spread > 1e-4) == with_positions, spread


def naive_greedy(model, features, steps):
    """The tutorial's loop: encode, then one eager decoder step per word from Python, argmax each."""
    memory, mask = model._encode(ops.convert_to_tensor(features), training=False)
    bundle = model.decoder.precompute_memory(memory, mask)
    state = model.decoder.get_initial_state(bundle, None)
    tokens = ops.full((features.shape[0],), BOS_ID, dtype="int32")
    outputs = []
    for _ in range(steps):
        embedded = ops.take(model.target_embedding.embeddings, tokens, axis=0)
        output, state, _ = model.decoder.step(embedded, state, bundle)
        logits = ops.convert_to_numpy(model._logits(output)).copy()
        logits[:, [0, BOS_ID]] = -np.inf  # padding and bos are never generated
        tokens = ops.convert_to_tensor(logits.argmax(-1).astype("int32"))
        outputs.append(ops.convert_to_numpy(tokens))
    return np.stack(outputs, axis=1)


def cut_at_eos(row):
    row = list(row)
    return row[: row.index(EOS_ID)] if EOS_ID in row else row


@pytest.mark.backend_agnostic
def test_greedy_search_is_beam_1_and_the_step_by_step_argmax(model):
    # Grids far apart (the CNN gives an untrained decoder grids too alike to caption differently).
    rng = np.random.default_rng(1)
    features = rng.normal(0.0, 3.0, (6, model.feature_grid**2, model.feature_channels)).astype(np.float32)
    greedy = model.generate(features)  # the default: beam_size=1
    assert np.array_equal(model.generate(features, beam_size=1)["token_ids"], greedy["token_ids"])
    naive = naive_greedy(model, features, model.max_target_length)
    for row in range(len(features)):
        tokens = list(greedy["token_ids"][row][: int(greedy["lengths"][row])])
        if greedy["truncated"][row]:  # cut at max_length: the loop's first max_length - 1 words
            assert tokens == list(naive[row][: len(tokens)])
        else:
            assert tokens == cut_at_eos(naive[row])
    assert len({tuple(greedy["token_ids"][row]) for row in range(len(features))}) > 1  # not one output for all


# -- Checkpoints ---------------------------------------------------------------------------------


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("encoder_weights", ["imagenet", None])
def test_checkpoint_round_trip_gives_identical_captions(tokenizer, images, tmp_path, encoder_weights):
    from keras_attn_zoo.checkpoint import load_checkpoint, save_checkpoint
    from keras_attn_zoo.models.captioner import ENCODER_WEIGHTS_FILE

    model = tiny_captioner(tokenizer, encoder_weights=encoder_weights)
    model.target_embedding.embeddings.assign(model.target_embedding.embeddings * 10.0)
    paths = [images[name] for name in ("photo", "photo2", "gray")]
    before = model.predict_images(paths, beam_size=2, return_attention=True)
    folder = save_checkpoint(model, tmp_path / "captioner", task="captioning", recipe="captioning")
    assert (folder / "assets" / ENCODER_WEIGHTS_FILE).exists() == (encoder_weights is None)
    loaded = load_checkpoint(folder)
    after = loaded.predict_images(paths, beam_size=2, return_attention=True)
    assert [p.text for p in after] == [p.text for p in before]
    assert [p.token_ids for p in after] == [p.token_ids for p in before]
    for old, new in zip(before, after):
        np.testing.assert_allclose(new.attention, old.attention, atol=1e-5)
    # The encoder itself came back: the same grids for the same pixels.
    pixels = np.stack([load_image(path, 64)[0] for path in paths])
    np.testing.assert_allclose(loaded.encode_images(pixels), model.encode_images(pixels), atol=1e-4)


# -- Images in, captions out ---------------------------------------------------------------------


def test_every_bad_image_gives_one_line_and_the_good_ones_are_captioned(model, images):
    order = ["photo", "not_an_image", "gray", "truncated", "palette", "empty", "rgba", "huge", "gray16",
             "missing", "cmyk", "animated", "photo2"]
    predictions = model.predict_images([images[name] for name in order], batch_size=4, return_attention=True)
    alone = model.predict_images([images[name] for name in GOOD], return_attention=True)
    by_name = dict(zip(GOOD, alone))
    for name, prediction in zip(order, predictions):
        if name in BAD:
            assert prediction.text == "" and prediction.score is None and prediction.attention is None
            assert BAD[name] in prediction.error and str(images[name]) in prediction.error
            assert "\n" not in prediction.error
            record = prediction.to_dict(attention=True)
            assert record["error"] == prediction.error and record["attention"] == []
        else:
            assert prediction.error is None, (name, prediction.error)
            assert isinstance(prediction.score, float)
            # Its caption does not depend on the bad images around it or on the batching.
            assert prediction.token_ids == by_name[name].token_ids, name
            assert prediction.attention.shape == (len(prediction.tokens), model.feature_grid**2)
            np.testing.assert_allclose(prediction.attention.sum(-1), 1.0, atol=1e-4)
            record = json.loads(json.dumps(prediction.to_dict(attention=True)))
            assert record["grid"] == [model.feature_grid] * 2 and record["output_tokens"] == prediction.tokens


def test_unusual_modes_are_read_as_a_person_sees_them(model, images):
    """Each unusual image gets the caption of the plain RGB picture it shows."""
    rgba = np.full((32, 32, 3), 255, np.uint8)
    rgba[8:24, 8:24] = 0  # black on white, not black on black
    with Image.open(images["gray16"]) as image:
        gray16 = np.round(np.asarray(image, np.float64) / 257).astype(np.uint8)
    references = {
        "rgba": rgba,
        "gray": np.asarray(Image.open(images["gray"]).convert("RGB")),
        "palette": np.asarray(Image.open(images["palette"]).convert("RGB")),
        "gray16": np.repeat(gray16[..., None], 3, -1),
        "animated": np.full((20, 20, 3), [255, 0, 0], np.uint8),
    }
    names = list(references)
    from_files = model.predict_images([images[name] for name in names])
    from_arrays = model.predict_images([references[name] for name in names])
    for name, file, array in zip(names, from_files, from_arrays):
        assert file.error is None and file.token_ids == array.token_ids, name
    cyan = decode_image(images["cmyk"])
    assert np.abs(cyan.astype(int) - [0, 255, 255]).max() <= 3


# -- The figure ----------------------------------------------------------------------------------


def test_plot_prediction_draws_the_image_and_one_panel_per_word(model, images, tmp_path):
    (prediction,) = model.predict_inputs([images["photo"]], return_attention=True, max_length=4)
    path = model.plot_prediction(prediction, images["photo"], tmp_path / "figure.png")
    assert path.read_bytes().startswith(PNG_MAGIC)
    with Image.open(path) as figure:
        width, height = figure.size
    assert width > 200 * min(5, len(prediction.tokens) + 1) and height > 150
    (bad,) = model.predict_inputs([images["empty"]], return_attention=True)
    assert model.plot_prediction(bad, images["empty"], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_plot_image_attention_lights_the_attended_part_of_the_picture(tmp_path):
    from keras_attn_zoo.plots import plot_image_attention

    picture = np.full((60, 120, 3), 200, np.uint8)  # wide: padded above and below in the square
    square, box = load_image(picture, size=64)
    attention = np.array([[0.0, 1.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])  # the top-right cell, then all
    path = plot_image_attention(picture, box, attention, ["▁right", "</s>"], tmp_path / "a.png", grid=2, dpi=50)
    figure = np.asarray(Image.open(path).convert("L"), np.float64)
    # The first word's panel: brighter on the right half of the picture than on the left.
    height, width = figure.shape
    panel = figure[int(0.25 * height) : int(0.95 * height), width // 3 : 2 * width // 3]
    column_means = panel.mean(0)
    assert column_means[-len(column_means) // 4 :].mean() > column_means[: len(column_means) // 4].mean() + 20
    plot_image_attention(square, box, attention, ["▁right", "</s>"], tmp_path / "square.png", grid=2, dpi=50)
    assert (tmp_path / "square.png").read_bytes().startswith(PNG_MAGIC)
    with pytest.raises(ValueError, match=r"expected \(2, 4\)"):
        plot_image_attention(picture, box, attention[:, :3], ["a", "b"], tmp_path / "b.png", grid=2)
    with pytest.raises(ValueError, match="expected RGB"):
        plot_image_attention(picture[:10], box, attention, ["a", "b"], tmp_path / "c.png", grid=2)
