"""Builds Fashion-MNIST scenes: items on a 3x3 grid, a caption naming each item and where it is.

Source: Debian `dataset-fashion-mnist` (Expat), four gzipped IDX files in
/usr/share/datasets/fashion-mnist/ (60,000 train and 10,000 t10k 28x28 uint8 images, 10 classes):

    apt-get install dataset-fashion-mnist

A scene is a 3x3 grid of 28x28 cells (84x84 pixels, grayscale, black background as in
Fashion-MNIST); 1 to 3 cells hold an item, the others stay empty. The caption names the items in
reading order (row by row, left to right) with the cell of each:

    "a sandal at the top left and a bag in the middle"
    "a coat at the top, a bag on the left and a boot at the bottom right"

Every item is one word (`ITEM_WORDS`) and each scene records, for each item, its class, its cell
(row, column) and the position of its word in `caption.split()`: that is what the localisation
metric needs (the share of item words whose attention peak falls in the item's cell).

Splits, never sharing an item image: train scenes from train images 0..54,999, dev scenes from
train images 55,000..59,999, test scenes from the t10k images. Each item image is used once per
split until all are used (a shuffled pass), so a split uses as many distinct images as it can.

Output (kept out of git), under --out:

    scenes/{split}/{index:06d}.png     the scenes, 8-bit grayscale PNGs
    captions.jsonl                     {"image", "caption", "split", "items": [{"label", "row", "column", "word"}]}

Usage:

    python recipes/build_fashion_scenes.py --out data/fashion_scenes
    python recipes/build_fashion_scenes.py --out /tmp/scenes --train 2000 --dev 200 --test 500 --seed 1
"""

import argparse
import gzip
import json
import struct
from pathlib import Path

import numpy as np

SOURCE = Path("/usr/share/datasets/fashion-mnist")
FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "t10k": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
# Fashion-MNIST's classes, in label order, each as the one word a caption uses.
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot")
ITEM_WORDS = ("tee", "trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot")
ARTICLES = {"trousers": "some"}  # "a" for the others
CELL_PHRASES = (("at the top left", "at the top", "at the top right"),
                ("on the left", "in the middle", "on the right"),
                ("at the bottom left", "at the bottom", "at the bottom right"))
GRID = 3
CELL = 28
DEV_START = 55_000


def read_idx(path):
    """The array in a (gzipped) IDX file: uint8 images (N, 28, 28) or labels (N,)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as file:
        data = file.read()
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (received header {data[:4]!r})")
    dims = data[3]
    shape = struct.unpack(f">{dims}I", data[4:4 + 4 * dims])
    values = np.frombuffer(data, np.uint8, offset=4 + 4 * dims)
    if values.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} ({int(np.prod(shape))} bytes); found {values.size} bytes")
    return values.reshape(shape)


def caption_for(items):
    """Caption and word positions for items [(label, row, column)] given in reading order.

    Returns (caption, [index of each item's word in caption.split()]).
    """
    phrases, words, positions = [], [], []
    for label, row, column in items:
        word = ITEM_WORDS[label]
        phrase = [ARTICLES.get(word, "a"), word] + CELL_PHRASES[row][column].split()
        phrases.append(phrase)
    for index, phrase in enumerate(phrases):
        if index > 0:
            joiner = "and" if index == len(phrases) - 1 else None
            if joiner:
                words.append(joiner)
            else:
                words[-1] += ","
        positions.append(len(words) + 1)
        words.extend(phrase)
    return " ".join(words), positions


def compose(item_images, cells, grid=GRID, cell=CELL):
    """A (grid*cell, grid*cell) uint8 scene with item_images[i] (cell x cell) in cells[i] = (row, column)."""
    scene = np.zeros((grid * cell, grid * cell), np.uint8)
    for image, (row, column) in zip(item_images, cells):
        if image.shape != (cell, cell):
            raise ValueError(f"received an item of shape {image.shape}; expected ({cell}, {cell})")
        scene[row * cell:(row + 1) * cell, column * cell:(column + 1) * cell] = image
    return scene


class _ItemDealer:
    """Deals item indices from a pool in shuffled passes, so every image is used before any repeats."""

    def __init__(self, pool, rng):
        self.pool, self.rng, self.queue = np.asarray(pool), rng, []

    def take(self, count):
        taken = []
        while len(taken) < count:
            if not self.queue:
                self.queue = list(self.rng.permutation(self.pool))
            taken.append(int(self.queue.pop()))
        return taken


def make_scenes(images, labels, pool, count, rng, min_items=1, max_items=3):
    """`count` scenes from the item images `images[pool]`: yields (scene uint8 84x84, record dict)."""
    dealer = _ItemDealer(pool, rng)
    for _ in range(count):
        n_items = int(rng.integers(min_items, max_items + 1))
        cells = sorted(divmod(int(c), GRID) for c in rng.choice(GRID * GRID, n_items, replace=False))
        chosen = dealer.take(n_items)
        items = [(int(labels[i]), row, column) for i, (row, column) in zip(chosen, cells)]
        caption, positions = caption_for(items)
        record = {"caption": caption, "source_images": chosen,
                  "items": [{"label": ITEM_WORDS[label], "row": row, "column": column, "word": word}
                            for (label, row, column), word in zip(items, positions)]}
        yield compose([images[i] for i in chosen], cells), record


def build(source, out, counts, seed=0, min_items=1, max_items=3):
    from PIL import Image

    source, out = Path(source), Path(out)
    arrays = {}
    for name, (image_file, label_file) in FILES.items():
        for file in (image_file, label_file):
            if not (source / file).exists():
                raise SystemExit(f"{source / file}: missing; install it with: apt-get install dataset-fashion-mnist")
        arrays[name] = (read_idx(source / image_file), read_idx(source / label_file))
    pools = {"train": ("train", np.arange(0, DEV_START)), "dev": ("train", np.arange(DEV_START, len(arrays["train"][0]))),
             "test": ("t10k", np.arange(len(arrays["t10k"][0])))}
    rng = np.random.default_rng(seed)
    written = 0
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "captions.jsonl", "w", encoding="utf-8") as captions:
        for split, count in counts.items():
            source_name, pool = pools[split]
            images, labels = arrays[source_name]
            folder = out / "scenes" / split
            folder.mkdir(parents=True, exist_ok=True)
            for index, (scene, record) in enumerate(make_scenes(images, labels, pool, count, rng, min_items, max_items)):
                relative = f"scenes/{split}/{index:06d}.png"
                Image.fromarray(scene).save(out / relative)
                record = {"image": relative, "caption": record["caption"], "split": split,
                          "source": source_name, **{k: record[k] for k in ("source_images", "items")}}
                captions.write(json.dumps(record) + "\n")
                written += 1
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--source", default=str(SOURCE), help="folder of the four IDX .gz files")
    parser.add_argument("--train", type=int, default=20_000)
    parser.add_argument("--dev", type=int, default=1_000)
    parser.add_argument("--test", type=int, default=2_000)
    parser.add_argument("--min-items", type=int, default=1)
    parser.add_argument("--max-items", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not 1 <= args.min_items <= args.max_items <= GRID * GRID:
        parser.error(f"received --min-items {args.min_items} --max-items {args.max_items}; expected 1 <= min <= max <= 9")
    counts = {"train": args.train, "dev": args.dev, "test": args.test}
    written = build(args.source, args.out, counts, args.seed, args.min_items, args.max_items)
    print(f"wrote {written} scenes and {Path(args.out) / 'captions.jsonl'}")


if __name__ == "__main__":
    main()
