"""Training with padded steps skipped (`AttentionDecoder.pack_rows`) against the dense loop: the ratio.

    python benchmarks/packed_rows.py [--rounds 4]

One process, one model, two compiled training steps (`pack_rows` off and on), the same batches,
rounds interleaved (the order alternating), target tokens (labels that are not padding) per second
of wall clock. Two cases:

- unbucketed: the peer benchmark's 4 random batches of 64 Bible training verses, each padded to
  its longest (`benchmarks/peer_training.py`'s data and its peer-sized model: Bahdanau attention,
  GRU 512, embeddings 256, untied, dropout 0.3). About half of their target steps are padding.
- bucketed: the Bible recipes' model size (GRU 256, tied embeddings 256, vocabulary 4,000) on 3
  random batches of 64 rows of lengths within 4 of the batch's (20, 36, 52 steps), what
  `attn-zoo train`'s length buckets give: the spans should cost nothing there (such batches run
  the dense loop).

Prints the tokens/s of every round and the median of the per-round ratios packed / dense.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peer_training  # noqa: E402 (the peer benchmark's batches and model size)


def main():
    args = peer_arguments(__doc__)
    from keras_attn_zoo.native_logs import quiet_import

    keras = quiet_import("keras")
    both_cases(keras, args, PACKING)


def both_cases(keras, args, variants):
    """`compare` of `variants` on the unbucketed peer case, then on the bucketed recipe-sized case;
    returns the peer case's `(model, batches)` for further comparisons."""
    peer_sized, unbucketed = peer_case(keras, args)
    compare(keras, "unbucketed (peer-sized model)", peer_sized, unbucketed, args.rounds, variants)
    recipe_sized, bucketed = bucketed_case(keras)
    compare(keras, "bucketed (Bible recipe model)", recipe_sized, bucketed, args.rounds, variants)
    return peer_sized, unbucketed


def bucketed_case(keras):
    """`(model, batches)`: the Bible recipes' model size (seeded) on 3 random batches of 64 rows of
    lengths within 4 of the batch's (20, 36, 52 steps), what `attn-zoo train`'s buckets give."""
    rng = np.random.default_rng(0)
    batches = []
    for steps in (20, 36, 52):
        source = rng.integers(4, 4000, (64, steps)).astype("int32")
        target = rng.integers(4, 4000, (64, steps)).astype("int32")
        for row, (s, t) in enumerate(zip(rng.integers(steps - 8, steps + 1, 64), rng.integers(steps - 4, steps + 1, 64))):
            source[row, s:], target[row, t:] = 0, 0
        batches.append(({"source_ids": source, "target_ids": target}, target))
    return recipe_model(keras), batches


def recipe_model(keras):
    """The Bible recipes' model size (GRU 256, tied embeddings 256, vocabulary 4,000, Bahdanau), seeded."""
    from keras_attn_zoo.recipes import translation

    keras.utils.set_random_seed(0)
    return translation(
        source_vocab_size=4000, target_vocab_size=4000, attention="bahdanau", units=256, embedding_dim=256,
        tie_embeddings=True, dropout=0.2,
    )


def compile_as_peer(keras, model):
    """The peer's training settings: Adam 1e-3, clip 1.0, masked cross-entropy, no metric."""
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3, clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    )


def peer_arguments(doc):
    """--rounds, and where the peer benchmark's data and batches are."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--data", default=str(peer_training.DATA))
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "attn_zoo_peer_benchmark"))
    return parser.parse_args()


def peer_case(keras, args):
    """`(model, batches)`: the peer benchmark's peer-sized model (seeded) and its 4 unbucketed batches."""
    from keras_attn_zoo.recipes import translation

    batch_args = argparse.Namespace(
        cache=args.cache, data=args.data, seed=0, batches=4, batch_size=64, max_length=100, bucketed=False
    )
    data = np.load(peer_training.prepare_batches(batch_args))
    batches = [
        ({"source_ids": data[f"source_{b}"], "target_ids": data[f"target_ids_{b}"]}, data[f"labels_{b}"]) for b in range(4)
    ]
    keras.utils.set_random_seed(0)
    model = translation(
        source_vocab_size=int(data["source_vocab"]), target_vocab_size=int(data["target_vocab"]), **peer_training.OURS
    )
    return model, batches


def _packing(pack):
    def setup(model):
        model.decoder.pack_rows = pack

    return setup


PACKING = {"dense": _packing(False), "packed": _packing(True)}  # reference first


def compare(keras, label, model, batches, rounds, variants):
    """Training tokens/s of `model` on `batches` for each of two `variants` ({name: setup(model)},
    the reference first), each traced into a training step of its own, rounds interleaved."""
    compile_as_peer(keras, model)
    tokens = sum(int((labels != 0).sum()) for _, labels in batches)
    real = [round(float((labels != 0).mean()), 2) for _, labels in batches]
    reference, candidate = variants
    steps = {}
    for name, setup in variants.items():  # one compiled training step each; every batch traced before timing
        setup(model)
        model.make_train_function(force=True)
        steps[name] = model.train_function
        started = time.perf_counter()
        for x, y in batches:
            model.train_on_batch(x, y)
        print(f"  {label}: warm-up {name} {time.perf_counter() - started:.0f}s", flush=True)
    rates = {name: [] for name in variants}
    for r in range(rounds):
        for name in (reference, candidate) if r % 2 == 0 else (candidate, reference):
            model.train_function = steps[name]
            started = time.perf_counter()
            for x, y in batches:
                model.train_on_batch(x, y)
            rates[name].append(tokens / (time.perf_counter() - started))
    ratio = statistics.median(c / r for r, c in zip(rates[reference], rates[candidate]))
    print(f"{label}: real fraction of target steps {real}")
    print(f"  tokens/s {reference} {[round(v) for v in rates[reference]]}, {candidate} {[round(v) for v in rates[candidate]]}")
    print(f"  {candidate} / {reference}: {ratio:.2f} (median of per-round ratios)", flush=True)


if __name__ == "__main__":
    main()
