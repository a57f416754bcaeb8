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

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import packed_rows  # noqa: E402 (the peer benchmark's case and the interleaved comparison)


def _copies(on):
    def setup(model):
        model.decoder.transposed_copies = on  # off: TensorFlow's own products
        model.decoder.pack_rows = True

    return setup


def main():
    args = packed_rows.peer_arguments(__doc__)
    from keras_attn_zoo.native_logs import quiet_import

    keras = quiet_import("keras")
    if keras.backend.backend() != "tensorflow":
        raise SystemExit("The transposed copies are TensorFlow's: run with KERAS_BACKEND=tensorflow.")
    model, batches = packed_rows.peer_case(keras, args)
    packed_rows.compare(keras, "peer batches (peer-sized model)", model, batches, args.rounds,
                        {"tensorflow's products": _copies(False), "transposed copies": _copies(True)})


if __name__ == "__main__":
    main()
