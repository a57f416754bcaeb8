"""Training with the decoder loop's products against transposed copies of their kernels
(`keras_attn_zoo.layers.linear`) against TensorFlow's own products: the ratio.

    python benchmarks/transposed_copies.py [--rounds 4]

One process, one model, two compiled training steps (the copies off and on), the same batches,
rounds interleaved (the order alternating), target tokens per second of wall clock, on the peer
benchmark's 4 random batches of 64 Bible training verses and its peer-sized model
(`benchmarks/peer_training.py`: Bahdanau attention, GRU 512, embeddings 256, untied, dropout 0.3),
padded steps skipped as `fit` does. Prints the tokens/s of every round and the median of the
per-round ratios.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import packed_rows  # noqa: E402 (its interleaved comparison)
import peer_training  # noqa: E402 (the peer benchmark's batches and model size)


def _copies(on):
    def setup(model):
        if on:
            model.decoder.__dict__.pop("_loop_kernels", None)
        else:
            model.decoder._loop_kernels = lambda: []  # no kernel gets a copy: TensorFlow's own products
        model.decoder.pack_rows = True

    return setup


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--data", default=str(peer_training.DATA))
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "attn_zoo_peer_benchmark"))
    args = parser.parse_args()

    from keras_attn_zoo.native_logs import quiet_import

    keras = quiet_import("keras")
    if keras.backend.backend() != "tensorflow":
        raise SystemExit("The transposed copies are TensorFlow's: run with KERAS_BACKEND=tensorflow.")
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
    packed_rows.compare(keras, "peer batches (peer-sized model)", model, batches, args.rounds,
                        {"tensorflow's products": _copies(False), "transposed copies": _copies(True)})


if __name__ == "__main__":
    main()
