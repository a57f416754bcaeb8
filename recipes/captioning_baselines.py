"""Measure the captions that need no decoder, on a captioning recipe's data (the icons by default).

    python recipes/captioning_baselines.py                                   # icons, test split
    python recipes/captioning_baselines.py --recipe recipes/icon_captioner.toml --split dev
    python recipes/captioning_baselines.py --features runs/icon_captioner/features  # reuse a run's grids

- most frequent: the most frequent training caption, for every image;
- nearest image: the caption of the training image nearest in the encoder's pooled feature space
  (the recipe's frozen CNN, e.g. EfficientNet-Lite0 at its image size; the grid averaged over its
  positions; cosine similarity).

Both are scored like the models (`keras_attn_zoo.task_metrics`, captioning: pycocoevalcap BLEU-1..4,
METEOR, ROUGE-L, CIDEr, exact match) against all references of each image. The training grids
are computed once (a few minutes on CPU) unless `--features` names a run's feature cache
(`runs/<name>/features/train.npy`, written by `attn-zoo train`) that holds them.
"""

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "icon_captioner.toml"
TABLE = (("bleu1", "B-1"), ("bleu4", "B-4"), ("meteor", "METEOR"), ("rougeL", "R-L"), ("cider", "CIDEr"),
         ("exact_match", "exact %"))


def _cached_grids(folder, split, images):
    """`(memory-mapped grids, row of each image)` from a run's cache (matched by file name), or None."""
    if folder is None:
        return None
    array, index = Path(folder) / f"{split}.npy", Path(folder) / f"{split}.json"
    if not (array.exists() and index.exists()):
        return None
    meta = json.loads(index.read_text())
    names = [Path(p).name for p in meta["requested"]]
    if len(set(names)) != len(names):
        return None
    row_of = {names[position]: row for row, position in enumerate(meta["rows"])}
    wanted = [row_of.get(Path(p).name) for p in images]
    if any(row is None for row in wanted):
        return None
    return np.load(array, mmap_mode="r"), wanted


def pooled_features(images, recipe, cache=None, split="train", batch_size=32):
    """(n, C) pooled grids of image paths, with the recipe's encoder (or from a run's `cache`)."""
    from keras_attn_zoo.baselines import pooled

    cached = _cached_grids(cache, split, images)
    if cached is not None:
        grids, rows = cached
        return np.concatenate([pooled(grids[rows[i : i + 256]]) for i in range(0, len(rows), 256)])
    from keras_attn_zoo.encoders import build_image_encoder
    from keras_attn_zoo.images import load_images

    settings = recipe["recipe"]
    encoder = build_image_encoder(settings.get("encoder", "efficientnet_lite0"), settings.get("encoder_weights", "imagenet"),
                                  settings.get("image_size", 224))
    encoder.trainable = False
    size = settings.get("image_size", 224)
    features = None
    for start in range(0, len(images), batch_size):
        loaded = load_images(images[start : start + batch_size], size=size)
        if features is None:
            channels = encoder.output_shape[-1]
            features = np.zeros((len(images), channels), np.float32)
        if len(loaded.index):
            grid = np.asarray(encoder(loaded.pixels, training=False))
            features[[start + i for i in loaded.index]] = grid.reshape(len(grid), -1, grid.shape[-1]).mean(axis=1)
    return features


def baseline_captions(recipe_path=RECIPE, split="test", cache=None, limit=None):
    """`({name: [caption per image]}, examples)`: the two baselines on a split of the recipe's data."""
    from keras_attn_zoo import baselines
    from keras_attn_zoo.recipe_file import load_recipe_file
    from keras_attn_zoo.task_data import read_examples

    recipe = load_recipe_file(recipe_path)
    data = recipe["data"]
    examples = read_examples("captioning", data["path"], data["source"], data["target"], split=split).head(limit)
    train = read_examples("captioning", data["path"], data["source"], data["target"], split=data.get("train_split", "train"))
    frequent = baselines.most_frequent_caption([c for captions in train.references for c in captions])
    train_features = pooled_features(train.inputs, recipe, cache, data.get("train_split", "train"))
    features = pooled_features(examples.inputs, recipe, cache, split)
    return {
        "most frequent": [frequent] * len(examples),
        "nearest image": baselines.nearest_captions(train_features, train.references, features),
    }, examples


def table(rows):
    """A Markdown table of (name, scores) rows."""
    lines = ["| system | " + " | ".join(title for _, title in TABLE) + " |", "|---|" + "---:|" * len(TABLE)]
    for name, scores in rows:
        lines.append(f"| {name} | " + " | ".join("-" if scores.get(k) is None else f"{scores[k]:.2f}" for k, _ in TABLE) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, default=RECIPE)
    parser.add_argument("--split", default="test")
    parser.add_argument("--features", help="a run's feature cache folder (runs/<name>/features) to reuse")
    parser.add_argument("--limit", type=int, help="only the first N images of the split")
    args = parser.parse_args(argv)
    from keras_attn_zoo.task_metrics import metrics_for

    metrics = metrics_for("captioning")
    outputs, examples = baseline_captions(args.recipe, args.split, args.features, args.limit)
    rows = [(name, metrics.score(examples.sources, captions, examples.references)) for name, captions in outputs.items()]
    print(f"{args.recipe.name} split={args.split}: {len(examples)} images")
    print(table(rows))


if __name__ == "__main__":
    main()
