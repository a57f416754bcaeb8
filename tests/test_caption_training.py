"""`attn-zoo train` on a captioning recipe: feature cache, batches, a loadable captioner.

A tiny synthetic set (coloured shapes on white, captions naming colour and shape) is written to
a temporary folder; the model is EfficientNet-Lite0 at 64 px (a 2x2 grid) with a 16-unit decoder.
"""

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from keras_attn_zoo.caption_training import CaptionBatches, FeatureCache
from keras_attn_zoo.checkpoint import load_checkpoint
from keras_attn_zoo.training import train

COLOURS = {"red": (220, 30, 30), "blue": (30, 30, 220), "green": (30, 160, 30)}
SHAPES = ("square", "disc")


def write_shapes(folder, per_split=(("train", 18), ("dev", 4), ("test", 3)), bad_train_image=True):
    """Shape images and captions.jsonl (several captions for some images); returns its path."""
    from PIL import Image, ImageDraw

    folder = Path(folder)
    (folder / "images").mkdir(parents=True)
    records, index = [], 0
    for split, count in per_split:
        for _ in range(count):
            colour = list(COLOURS)[index % 3]
            shape = SHAPES[(index // 3) % 2]
            image = Image.new("RGB", (48, 40), "white")
            draw = ImageDraw.Draw(image)
            box = (8, 6, 40, 34)
            (draw.rectangle if shape == "square" else draw.ellipse)(box, fill=COLOURS[colour])
            name = f"images/{index:03d}.png"
            image.save(folder / name)
            records.append({"image": name, "caption": f"a {colour} {shape}", "split": split})
            if index % 4 == 0:
                records.append({"image": name, "caption": f"one {colour} {shape}", "split": split})
            index += 1
    if bad_train_image:
        (folder / "images" / "bad.png").write_bytes(b"this is not a png")
        records.append({"image": "images/bad.png", "caption": "a broken image", "split": "train"})
    path = folder / "captions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def write_recipe(folder, data_path, epochs=2, extra="", training_extra=""):
    path = Path(folder) / "recipe.toml"
    path.write_text(textwrap.dedent(f"""\
        name = "tiny_shapes"
        seed = 5

        [recipe]
        name = "captioning"
        image_size = 64
        units = 16
        embedding_dim = 8
        dropout = 0.0
        doubly_stochastic_loss_weight = 0.1
        doubly_stochastic_target = 0.5
        {extra}
        [data]
        path = "{data_path}"
        source = "image"
        target = "caption"

        [tokenizer]
        vocab_size = 14
        model_type = "word"

        [training]
        epochs = {epochs}
        batch_size = 8
        patience = 5
        max_target_length = 8
        {training_extra}
        """))
    return path


pytestmark = pytest.mark.backend_agnostic


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shapes")
    data = write_shapes(folder / "data")
    run_dir = folder / "run"
    checkpoint = train(write_recipe(folder, data), run_dir, verbose=0)
    return folder, data, run_dir, checkpoint


def test_train_caches_features_once_and_writes_a_loadable_captioner(trained):
    folder, data, run_dir, checkpoint = trained
    rows = (run_dir / "log.csv").read_text().splitlines()
    assert len(rows) == 3 and "doubly_stochastic_loss" in rows[0]
    model = load_checkpoint(checkpoint)
    assert model.zoo_task == "captioning"
    assert (model.units, model.feature_grid, model.feature_channels) == (16, 2, 1280)
    # 18 train images with 23 captions; the unreadable image is left out of the cache, not of the count.
    assert model.zoo_metadata["train_examples"] == 24 and model.zoo_metadata["dev_examples"] == 5
    index = json.loads((run_dir / "features" / "train.json").read_text())
    assert len(index["rows"]) == 18 and len(index["left_out"]) == 1 and "bad.png" in index["left_out"][0]
    grids = np.load(run_dir / "features" / "train.npy")
    assert grids.shape == (18, 4, 1280) and grids.dtype == np.float16
    # The cache holds what the model's encoder computes for those images now.
    from keras_attn_zoo.images import load_images

    first = load_images([data.parent / "images" / "000.png"], size=64).pixels
    np.testing.assert_allclose(grids[0].astype(np.float32), model.encode_images(first)[0], atol=0.01, rtol=0.01)
    (prediction,) = model.predict_images([data.parent / "images" / "000.png"], max_length=5, min_length=2)
    assert prediction.error is None and 2 <= len(prediction.token_ids) <= 5


def test_a_trainable_encoder_is_fine_tuned_on_decoded_images_and_saved_with_the_checkpoint(tmp_path):
    from keras_attn_zoo.encoders import build_image_encoder
    from keras_attn_zoo.images import load_images

    data = write_shapes(tmp_path / "data")
    run_dir = tmp_path / "run"
    checkpoint = train(write_recipe(tmp_path, data, epochs=1, extra="train_encoder = true"), run_dir, verbose=0)
    # The images are decoded once into the cache (uint8, fitted into the square); no grids are cached.
    index = json.loads((run_dir / "features" / "train.pixels.json").read_text())
    assert len(index["rows"]) == 18 and "bad.png" in index["left_out"][0]
    pixels = np.load(run_dir / "features" / "train.pixels.npy")
    assert pixels.shape == (18, 64, 64, 3) and pixels.dtype == np.uint8
    assert not (run_dir / "features" / "train.npy").exists()
    model = load_checkpoint(checkpoint)
    assert model.train_encoder and set(model.input) == {"images", "target_ids"}
    # The CNN moved away from its ImageNet start; its BatchNorm statistics did not.
    start = build_image_encoder("efficientnet_lite0", "imagenet", 64)
    trained_cnn = {w.path: np.asarray(w) for w in model.image_encoder.weights}
    original = {w.path: np.asarray(w) for w in start.weights}
    assert trained_cnn.keys() == original.keys()
    moved = [path for path in original if not np.allclose(trained_cnn[path], original[path], atol=1e-6)]
    assert moved and all("moving" not in path for path in moved), moved
    assert any("moving" in path for path in original)
    # Captions come from the fine-tuned CNN, which the checkpoint carries.
    first = load_images([data.parent / "images" / "000.png"], size=64).pixels
    np.testing.assert_allclose(model.encode_images(first), np.asarray(model.image_encoder(first)).reshape(1, 4, -1), atol=1e-5)
    assert not np.allclose(model.encode_images(first), np.asarray(start(first)).reshape(1, 4, -1), atol=1e-3)
    (prediction,) = model.predict_images([data.parent / "images" / "000.png"], max_length=5, min_length=2)
    assert prediction.error is None


def test_a_fine_tune_keeps_the_caption_vocabulary_of_its_start(trained, tmp_path):
    """init_from: the run writes with the tokenizer its start was trained with, not one trained anew."""
    folder, data, run_dir, checkpoint = trained
    fewer = tmp_path / "recipe"
    fewer.mkdir()
    # Other captions would train another vocabulary: the start's must be kept all the same.
    recipe = write_recipe(fewer, data, epochs=1, training_extra=f'init_from = "{run_dir}"\nmax_train_examples = 4')
    tuned = train(recipe, tmp_path / "run", verbose=0)
    start = (checkpoint / "assets" / "target.spm.model").read_bytes()
    assert (tmp_path / "run" / "tokenizers" / "target.spm.model").read_bytes() == start
    assert (tuned / "assets" / "target.spm.model").read_bytes() == start
    assert json.loads((tmp_path / "run" / "init_from.json").read_text())["folder"] == str(checkpoint)


def test_a_valid_cache_is_reused_and_a_stale_one_recomputed(trained, tmp_path):
    folder, data, run_dir, checkpoint = trained
    model = load_checkpoint(checkpoint)
    cache = FeatureCache(run_dir / "features", "dev")
    images = [data.parent / "images" / f"{i:03d}.png" for i in range(18, 22)]
    before = cache.array_path.stat().st_mtime_ns
    grids, rows, left_out = cache.load(images, model, progress=False)
    assert cache.array_path.stat().st_mtime_ns == before and rows == [0, 1, 2, 3] and not left_out
    fresh = FeatureCache(tmp_path, "dev")
    again, _, _ = fresh.load(images[::-1], model, progress=False)  # another image list: computed anew
    # Equal up to float16 rounding: another batch order can move a float32 grid by an ulp or two.
    np.testing.assert_allclose(np.asarray(again)[::-1].astype(np.float32), np.asarray(grids).astype(np.float32), rtol=2e-3, atol=1e-4)


def test_caption_batches_shift_the_captions_and_cover_every_pair():
    grids = np.arange(3 * 2 * 4, dtype=np.float16).reshape(3, 2, 4)
    pairs = [(0, [1, 5, 6, 2]), (2, [1, 7, 2]), (1, [1, 8, 9, 10, 2])]
    batches = CaptionBatches(grids, pairs, batch_size=2, shuffle=False)
    assert len(batches) == 2
    (x, y) = batches[0]
    np.testing.assert_array_equal(x["target_ids"], [[1, 5, 6], [1, 7, 0]])
    np.testing.assert_array_equal(y, [[5, 6, 2], [7, 2, 0]])
    np.testing.assert_array_equal(x["features"], grids[[0, 2]].astype(np.float32))
    shuffled = CaptionBatches(grids, pairs, batch_size=2, shuffle=True, seed=1)
    seen = [tuple(int(t) for t in row if t) for i in range(len(shuffled)) for row in shuffled[i][1]]
    assert sorted(seen) == sorted(tuple(ids[1:]) for _, ids in pairs)
    padded = CaptionBatches(grids, pairs, batch_size=2, shuffle=False, length_multiple=8)
    assert padded[0][0]["target_ids"].shape == (2, 8) and padded[1][1].shape == (1, 8)


def test_a_trained_captioner_round_trips_through_the_hub(trained, hub, hub_cache, hub_repo_id):
    import keras_attn_zoo

    folder, data, run_dir, checkpoint = trained
    model = load_checkpoint(checkpoint)
    images = [data.parent / "images" / f"{i:03d}.png" for i in (0, 4, 7)]
    sha = keras_attn_zoo.push_to_hub(model, f"hf://{hub_repo_id}")
    files = hub.state.repo(hub_repo_id).commits[sha].files
    assert {"config.json", "model.weights.h5", "assets/target.spm.model", "README.md"} <= set(files)
    assert b"pipeline_tag: image-to-text" in files["README.md"]
    pulled = keras_attn_zoo.from_pretrained(f"hf://{hub_repo_id}@{sha}")
    options = dict(max_length=5, min_length=2, beam_size=2)
    expected = [(p.text, round(p.score, 4)) for p in model.predict_images(images, **options)]
    assert [(p.text, round(p.score, 4)) for p in pulled.predict_images(images, **options)] == expected


def test_batches_of_different_caption_lengths_feed_fit_in_any_order():
    """Keras' PyDataset adapter fixes a length its first batches agree on; the tf.data form does not."""
    from keras_attn_zoo.models.captioner import Captioner

    grids = np.random.default_rng(0).random((6, 4, 1280)).astype(np.float16)
    pairs = [(i, [1] + [5] * 6 + [2]) for i in range(4)] + [(4, [1, 5, 2]), (5, [1, 6, 7, 2])]
    batches = CaptionBatches(grids, pairs, batch_size=2, shuffle=False)  # lengths 7, 7, then 3
    model = Captioner(12, image_size=64, feature_grid=2, units=8, embedding_dim=4)
    model.compile()
    history = model.fit(batches.as_tf_dataset(), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()


def test_float16_weights_halve_the_file_and_load_back_as_float32(trained, tmp_path):
    from keras_attn_zoo.checkpoint import WEIGHTS_FILE, save_checkpoint

    folder, data, run_dir, checkpoint = trained
    model = load_checkpoint(checkpoint)
    full = save_checkpoint(model, tmp_path / "f32", task="captioning", recipe="captioning")
    half = save_checkpoint(model, tmp_path / "f16", task="captioning", recipe="captioning", weights_dtype="float16")
    ratio = (half / WEIGHTS_FILE).stat().st_size / (full / WEIGHTS_FILE).stat().st_size
    assert 0.45 < ratio < 0.7  # the arrays halve; names and layout stay
    loaded = load_checkpoint(half)
    assert loaded.zoo_metadata["weights_dtype"] == "float16"
    for expected, actual in zip(model.weights, loaded.weights):
        assert str(actual.dtype) == "float32"
        np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=2e-3, atol=1e-3)
    with pytest.raises(ValueError, match="weights_dtype"):
        save_checkpoint(model, tmp_path / "bad", weights_dtype="int8")
