"""Training with `make_dataset`'s default batching (pools sorted by both lengths) against the
length buckets `attn-zoo train` used up to session 14: the ratio of target tokens per second.

    python benchmarks/batching.py [--batches N] [--task summarization]

The Bible recipes' data (the training split of `../shared/data/bible_en_es.tsv.gz`, pieces of the
bundled `bible_en_es_bahdanau` tokenizers, batch 64, lengths cut at 100 / 120 as in its recipe) and
model size (`packed_rows.recipe_model`), one process, one compiled training step, the two datasets'
batches interleaved (one of each in turn, the order alternating), for an epoch of each (or the first
`--batches`). Both epochs hold the same pairs, so the same target tokens; the difference is their
padding. `--task summarization`: the Debian summarizer's data and sizes instead (the training split of
`../shared/data/debian_descriptions.tsv.gz`, the package name before each description, the bundled
`debian_summarizer_bahdanau` tokenizer, lengths cut at 80 / 32, sorted and bucketed by source length;
its plain-attention model, `recipes/debian_summarizer_bahdanau.toml`). Prints each dataset's real
fraction of target and source steps and the tokens/s ratio pools / buckets (wall clock of the training steps; the input pipeline is read before timing).
"""

import argparse
import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import packed_rows  # noqa: E402 (the recipe-sized model, the peer's compile settings)
import peer_training  # noqa: E402 (where the Bible data is, the old target-length buckets)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=None, help="batches of each dataset (default: an epoch)")
    parser.add_argument("--task", choices=("translation", "summarization"), default="translation")
    args = parser.parse_args()

    from keras_attn_zoo import allocator
    from keras_attn_zoo.native_logs import quiet_import

    allocator.keep_freed_memory()
    keras = quiet_import("keras")
    from keras_attn_zoo import presets
    from keras_attn_zoo.data import make_dataset, read_pairs
    from keras_attn_zoo.tokenizer import SubwordTokenizer

    if args.task == "translation":
        preset, data, columns, lengths = "bible_en_es_bahdanau", peer_training.DATA, ("en", "es", None), (100, 120)
    else:
        preset, data = "debian_summarizer_bahdanau", peer_training.DATA.parent / "debian_descriptions.tsv.gz"
        columns, lengths = ("description", "synopsis", "package"), (80, 32)
    assets = presets.bundled_checkpoint(preset) / "assets"
    source_tokenizer, target_tokenizer = (
        SubwordTokenizer((assets / f"{side}.spm.model").read_bytes()) for side in ("source", "target")
    )
    sources, targets = read_pairs(data, columns[0], columns[1], split="train", prefix=columns[2])
    common = dict(
        batch_size=64, max_source_length=lengths[0], max_target_length=lengths[1], seed=0,
        bucket_by="target" if args.task == "translation" else "source",
    )
    datasets = {
        "buckets": make_dataset(sources, targets, source_tokenizer, target_tokenizer, bucket_boundaries=peer_training.TARGET_BUCKETS, **common),
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

    if args.task == "translation":
        model = packed_rows.recipe_model(keras)
    else:
        from keras_attn_zoo.recipes import summarization

        keras.utils.set_random_seed(0)
        model = summarization(
            vocab_size=source_tokenizer.vocab_size, attention="bahdanau", copy=False, coverage=False,
            embedding_dim=128, units=256, dropout=0.2,
        )
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
