"""recipes/build_fashion_scenes.py on tiny IDX files written here (no Debian package needed)."""

import gzip
import importlib.util
import json
import struct
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "recipes" / "build_fashion_scenes.py"
spec = importlib.util.spec_from_file_location("build_fashion_scenes", SCRIPT)
scenes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(scenes)


def write_idx(path, array):
    header = b"\x00\x00\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as file:
        file.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def source(tmp_path):
    """Fake Fashion-MNIST: item i of a file is filled with its own value, so scenes show which items they used."""
    folder = tmp_path / "fashion"
    folder.mkdir()
    for name, count in (("train", scenes.DEV_START + 20), ("t10k", 30)):
        values = np.arange(count) % 250 + 1 if name == "train" else 255 - np.arange(count)
        write_idx(folder / f"{name}-images-idx3-ubyte.gz", np.broadcast_to(values[:, None, None], (count, 28, 28)))
        write_idx(folder / f"{name}-labels-idx1-ubyte.gz", np.arange(count) % 10)
    return folder


def test_caption_template_names_items_in_reading_order_with_their_cells():
    caption, words = scenes.caption_for([(5, 0, 0), (8, 1, 1)])
    assert caption == "a sandal at the top left and a bag in the middle"
    assert [caption.split()[i] for i in words] == ["sandal", "bag"]
    caption, words = scenes.caption_for([(4, 0, 1), (1, 1, 0), (9, 2, 2)])
    assert caption == "a coat at the top, some trousers on the left and a boot at the bottom right"
    assert [caption.split()[i] for i in words] == ["coat", "trousers", "boot"]
    assert scenes.caption_for([(0, 2, 1)]) == ("a tee at the bottom", [1])


def test_compose_places_each_item_in_its_cell():
    items = [np.full((28, 28), 7, np.uint8), np.full((28, 28), 9, np.uint8)]
    scene = scenes.compose(items, [(0, 2), (2, 0)])
    assert scene.shape == (84, 84)
    assert (scene[0:28, 56:84] == 7).all() and (scene[56:84, 0:28] == 9).all()
    assert scene.sum() == 28 * 28 * (7 + 9)  # every other cell empty
    with pytest.raises(ValueError, match=r"received an item of shape \(27, 28\); expected \(28, 28\)"):
        scenes.compose([np.zeros((27, 28), np.uint8)], [(0, 0)])


def test_read_idx_rejects_a_short_file(tmp_path):
    path = tmp_path / "short.gz"
    with gzip.open(path, "wb") as file:
        file.write(b"\x00\x00\x08\x01" + struct.pack(">I", 10) + b"\x01\x02")
    with pytest.raises(ValueError, match=r"short\.gz: header says \(10,\) \(10 bytes\); found 2 bytes"):
        scenes.read_idx(path)


def test_build_writes_scenes_whose_captions_match_their_pixels(source, tmp_path):
    from PIL import Image

    out = tmp_path / "out"
    written = scenes.build(source, out, {"train": 12, "dev": 6, "test": 8}, seed=3, min_items=1, max_items=3)
    records = [json.loads(line) for line in (out / "captions.jsonl").read_text().splitlines()]
    assert written == len(records) == 26
    assert [r["split"] for r in records].count("test") == 8
    for record in records:
        pixels = np.asarray(Image.open(out / record["image"]))
        assert pixels.shape == (84, 84)
        words = record["caption"].split()
        assert 1 <= len(record["items"]) <= 3
        cells = [(item["row"], item["column"]) for item in record["items"]]
        assert cells == sorted(cells) and len(set(cells)) == len(cells)  # reading order, distinct cells
        for item, index in zip(record["items"], record["source_images"]):
            assert words[item["word"]].rstrip(",") == item["label"]
            cell = pixels[item["row"] * 28:(item["row"] + 1) * 28, item["column"] * 28:(item["column"] + 1) * 28]
            # the fake item images are constant: each cell shows exactly the item the record names
            expected = index % 250 + 1 if record["source"] == "train" else 255 - index
            assert (cell == expected).all()
            assert item["label"] == scenes.ITEM_WORDS[index % 10]
        empty = 9 - len(cells)
        assert (pixels == 0).sum() == empty * 28 * 28
    # train, dev and test scenes never share an item image
    used = {split: {i for r in records if r["split"] == split for i in r["source_images"]}
            for split in ("train", "dev", "test")}
    assert all(i < scenes.DEV_START for i in used["train"]) and all(i >= scenes.DEV_START for i in used["dev"])
    assert all(r["source"] == "t10k" for r in records if r["split"] == "test")


def test_items_are_dealt_in_passes_before_any_repeats():
    dealer = scenes._ItemDealer(range(5), np.random.default_rng(0))
    first = dealer.take(5)
    assert sorted(first) == [0, 1, 2, 3, 4]
    assert sorted(dealer.take(5)) == [0, 1, 2, 3, 4]
