"""Training with the logits computed at the real target positions only
(`keras_attn_zoo.layers.real_positions`) against every position, and the default accuracy metric
(top-1 of the logits) against Keras' `SparseCategoricalAccuracy`: the ratios.

    python benchmarks/real_positions.py [--rounds 4]

One process, one model, two compiled training steps per comparison, the same batches, rounds
interleaved (the order alternating), target tokens per second of wall clock, padded steps skipped
in the decoder loop as `fit` does. Cases:

- unbucketed: the peer benchmark's 4 random batches of 64 Bible training verses and its peer-sized
  model (`benchmarks/peer_training.py`: Bahdanau attention, GRU 512, embeddings 256, untied,
  dropout 0.3); about half of their target positions are padding;
- bucketed: the Bible recipes' model size (tied embeddings) on batches of rows within 4 steps of
  each other, what `attn-zoo train`'s length buckets give (`packed_rows.bucketed_case`);
- the metric, on the unbucketed case.

Prints the tokens/s of every round and the median of the per-round ratios.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import packed_rows  # noqa: E402 (the peer benchmark's case and the interleaved comparison)


def _real_positions(on):
    def setup(model):
        model._logits_layer().real_positions_only = on  # off: the logits at every position

    return setup


def _metric(name):
    def setup(model):
        keras = sys.modules["keras"]
        metric = {
            "argmax": keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            "top-1": keras.metrics.SparseTopKCategoricalAccuracy(k=1, name="accuracy"),  # compile's default
        }[name]
        model.compile(loss=model.loss, metrics=[metric])

    return setup


def main():
    args = packed_rows.peer_arguments(__doc__)
    from keras_attn_zoo.native_logs import quiet_import

    keras = quiet_import("keras")
    if keras.backend.backend() != "tensorflow":
        raise SystemExit("Logits at real positions only are TensorFlow's: run with KERAS_BACKEND=tensorflow.")
    logits = {"every position": _real_positions(False), "real positions only": _real_positions(True)}
    model, batches = packed_rows.both_cases(keras, args, logits)
    metrics = {"argmax accuracy": _metric("argmax"), "top-1 accuracy": _metric("top-1")}
    packed_rows.compare(keras, "metric, unbucketed (peer-sized model)", model, batches, args.rounds, metrics)


if __name__ == "__main__":
    main()
