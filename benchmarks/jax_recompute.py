"""On JAX, the decoder loop's attention scores recomputed in the backward pass against stored: the ratio.

    KERAS_BACKEND=jax python benchmarks/jax_recompute.py [--rounds 4]

`keras_attn_zoo.layers.base_attention._recomputed_in_backward` runs an additive score (Bahdanau,
concat) under `jax.checkpoint` inside the decoder loop, so that `lax.scan` keeps no
(steps, batch, Tv, units) buffers of the steps' intermediates for the backward pass; the
reference calls the score as it is (what the zoo did before). One process, one model, two compiled
training steps, the same batches, rounds interleaved (the order alternating), target tokens per
second of wall clock. The cases of `benchmarks/packed_rows.py`: the peer benchmark's 4 unbucketed
batches with its peer-sized model (Bahdanau attention, GRU 512, embeddings 256, untied), and the
Bible recipes' model size on 3 bucketed batches.

Prints the tokens/s of every round and the median of the per-round ratios recomputed / stored.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import packed_rows  # noqa: E402 (the peer benchmark's case and the interleaved comparison)


def _wrapping(module, wrap):
    def setup(model):
        module._recomputed_in_backward = wrap  # read when the training step is traced, next

    return setup


def main():
    args = packed_rows.peer_arguments(__doc__)
    from keras_attn_zoo.native_logs import quiet_import

    keras = quiet_import("keras")
    if keras.backend.backend() != "jax":
        raise SystemExit("The recompute is JAX's: run with KERAS_BACKEND=jax.")
    from keras_attn_zoo.layers import base_attention

    variants = {
        "scores stored": _wrapping(base_attention, lambda score: score),
        "scores recomputed": _wrapping(base_attention, base_attention._recomputed_in_backward),
    }
    packed_rows.both_cases(keras, args, variants)


if __name__ == "__main__":
    main()
