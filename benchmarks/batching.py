"""Training with `make_dataset`'s default batching (pools sorted by both lengths) against the
target-length buckets `attn-zoo train` used up to session 14: the ratio of target tokens per second.

    python benchmarks/batching.py [--batches N]

The Bible recipes' data (the training split of `../shared/data/bible_en_es.tsv.gz`, pieces of the
bundled `bible_en_es_bahdanau` tokenizers, batch 64, lengths cut at 100 / 120 as in its recipe) and
model size (`packed_rows.recipe_model`), one process, one compiled training step, the two datasets'
batches interleaved (one of each in turn, the order alternating), for an epoch of each (or the first
`--batches`). Both epochs hold the same pairs, so the same target tokens; the difference is their
padding. Prints each dataset's real fraction of target and source steps and the tokens/s ratio
pools / buckets (wall clock of the training steps; the input pipeline is read before timing).
"""

import argparse
import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import packed_rows  # noqa: E402 (the recipe-sized model, the peer's compile settings)
import peer_training  # noqa: E402 (where the Bible data is)

TARGET_BUCKETS = peer_training.TARGET_BUCKETS


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=None, help="batches of each dataset (default: an epoch)")
    parser.add_argument("--data", default=str(peer_training.DATA))
    args = parser.parse_args()

    from keras_attn_zoo import allocator
    from keras_attn_zoo.native_logs import quiet_import

    allocator.keep_freed_memory()
    keras = quiet_import("keras")
    from keras_attn_zoo import presets
    from keras_attn_zoo.data import make_dataset, read_pairs
    from keras_attn_zoo.tokenizer import SubwordTokenizer

    assets = presets.bundled_checkpoint("bible_en_es_bahdanau") / "assets"
    source_tokenizer, target_tokenizer = (
        SubwordTokenizer((assets / f"{side}.spm.model").read_bytes()) for side in ("source", "target")
    )
    sources, targets = read_pairs(args.data, "en", "es", split="train")
    common = dict(batch_size=64, max_source_length=100, max_target_length=120, seed=0)
    datasets = {
        "buckets": make_dataset(sources, targets, source_tokenizer, target_tokenizer, bucket_boundaries=TARGET_BUCKETS, **common),
        "pools": make_dataset(sources, targets, source_tokenizer, target_tokenizer, **common),
    }
    batches = {}
    for name, ds in datasets.items():
        batches[name] = [
            ({k: v.numpy() for k, v in x.items()}, y.numpy()) for x, y in itertools.islice(ds, args.batches)
        ]
        labels = [y for _, y in batches[name]]
        source_ids = [x["source_ids"] for x, _ in batches[name]]
        print(
            f"{name}: {len(labels)} batches, real fraction of target steps "
            f"{sum(int((y != 0).sum()) for y in labels) / sum(y.size for y in labels):.3f}, of source steps "
            f"{sum(int((s != 0).sum()) for s in source_ids) / sum(s.size for s in source_ids):.3f}",
            flush=True,
        )

    model = packed_rows.recipe_model(keras)
    packed_rows.compile_as_peer(keras, model)
    for name in batches:  # trace the step (TensorFlow generalizes its shapes after the first few)
        for x, y in batches[name][:3]:
            model.train_on_batch(x, y)
    spent = {name: 0.0 for name in batches}
    tokens = {name: 0 for name in batches}
    for i in range(max(len(b) for b in batches.values())):
        for name in ("buckets", "pools") if i % 2 == 0 else ("pools", "buckets"):
            if i < len(batches[name]):
                x, y = batches[name][i]
                started = time.perf_counter()
                model.train_on_batch(x, y)
                spent[name] += time.perf_counter() - started
                tokens[name] += int((y != 0).sum())
    rates = {name: tokens[name] / spent[name] for name in batches}
    print(f"tokens/s buckets {rates['buckets']:.0f}, pools {rates['pools']:.0f} "
          f"(seconds {spent['buckets']:.0f} / {spent['pools']:.0f})")
    print(f"pools / buckets: {rates['pools'] / rates['buckets']:.2f}", flush=True)


if __name__ == "__main__":
    main()
