"""Training with the encoder GRU's input products done for all steps at once
(`keras_attn_zoo.layers.GRU`) against Keras' GRU loop (one input product a step): the ratio.

    [KERAS_BACKEND=jax] python benchmarks/encoder_inputs.py [--rounds 4]

One process, one model, two compiled training steps (`GRU.project_inputs_at_once` off, then on),
the same batches, rounds interleaved (the order alternating), target tokens per second of wall
clock. The cases of `benchmarks/packed_rows.py`: the peer benchmark's 4 unbucketed batches with its
peer-sized model (bidirectional GRU encoder of 256 a direction, Bahdanau attention, GRU 512,
embeddings 256, untied) and the Bible recipes' model size on 3 bucketed batches. Either backend.

Prints the tokens/s of every round and the median of the per-round ratios.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import packed_rows  # noqa: E402 (the peer benchmark's case and the interleaved comparison)


def _at_once(on):
    def setup(model):
        from keras_attn_zoo.layers import GRU

        GRU.project_inputs_at_once = on  # read when the training step is traced, next

    return setup


def main():
    args = packed_rows.peer_arguments(__doc__)
    from keras_attn_zoo.native_logs import quiet_import

    keras = quiet_import("keras")
    packed_rows.both_cases(keras, args, {"keras' loop": _at_once(False), "inputs at once": _at_once(True)})


if __name__ == "__main__":
    main()
