"""Training throughput of AttentionDecoder against a Keras-built reference decoder.

Candidates, each trained on the same fixed random batch with the same encoder:

- `bahdanau`: `AttentionDecoder(attention="bahdanau")`, the attention inside the recurrence
  (the query is the previous state, the context is fed to the cell), so every step runs in the loop;
- `luong_no_feed`: `AttentionDecoder(attention="general", input_feeding=False)`, the parallel path:
  the GRU runs over all steps first and attends to all of them at once.

The reference is the parallel design of the TensorFlow NMT tutorial built from Keras layers only:
`GRU(return_sequences=True)` started from the encoder state, `AdditiveAttention` with the GRU
outputs as query and the encoder memory as value, then `Dense(tanh)` on [context; GRU output].
`AdditiveAttention` scores all (target, source) pairs in one (batch, T, Tv, dim) tensor, which is
costly on a CPU, so `reference_dot` (the same with the dot-product `keras.layers.Attention`) is
also timed as the closer reference for the multiplicative Luong score.

A training step is forward + backward + optimizer update (`model.fit`). The models are timed
interleaved (the order rotates each repeat), warm-up excluded, and each ratio is the median over
repeats of reference time / candidate time: tokens/sec of the candidate over that of the
reference, measured in the same run; the headline ratios are printed last. Both `jit_compile=False` and `jit_compile=True` (XLA) are
measured; each ratio compares models compiled the same way.

    python benchmarks/decoder_throughput.py
    python benchmarks/decoder_throughput.py --quick
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_attn_zoo.layers import AttentionDecoder  # noqa: E402

CANDIDATES = ("bahdanau", "luong_no_feed")
REFERENCES = ("reference", "reference_dot")


def build(kind, vocab, embed_dim, units):
    source = keras.Input((None,), dtype="int32", name="source")
    decoder_in = keras.Input((None,), dtype="int32", name="decoder_in")
    embedded_source = keras.layers.Embedding(vocab, embed_dim, name="source_embedding")(source)
    memory, encoder_state = keras.layers.GRU(units, return_sequences=True, return_state=True, name="encoder")(
        embedded_source
    )
    embedded_target = keras.layers.Embedding(vocab, embed_dim, name="target_embedding")(decoder_in)
    if kind in REFERENCES:
        states = keras.layers.GRU(units, return_sequences=True, name="decoder_gru")(
            embedded_target, initial_state=encoder_state
        )
        attention = keras.layers.AdditiveAttention if kind == "reference" else keras.layers.Attention
        context = attention(name="attention")([states, memory])
        outputs = keras.layers.Dense(units, activation="tanh", name="readout")(
            keras.layers.Concatenate()([context, states])
        )
    else:
        if kind == "bahdanau":
            decoder = AttentionDecoder(units, attention="bahdanau", name="decoder")
        else:
            decoder = AttentionDecoder(units, attention="general", input_feeding=False, name="decoder")
            assert decoder.parallel, "Luong placement without input feeding should take the parallel path"
        outputs = decoder(embedded_target, memory, initial_state=encoder_state)
    logits = keras.layers.Dense(vocab, name="logits")(outputs)
    return keras.Model([source, decoder_in], logits, name=kind)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--source-len", type=int, default=30)
    parser.add_argument("--target-len", type=int, default=30)
    parser.add_argument("--embed-dim", type=int, default=128)
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=None, help="training steps per timed block (default 8)")
    parser.add_argument("--repeats", type=int, default=None, help="timed blocks per model (default 5)")
    parser.add_argument(
        "--jit-compile", choices=("off", "on", "both"), default="both",
        help="compile the models without XLA, with it, or both (each ratio stays like-for-like)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="one short repeat, to check the script works")
    args = parser.parse_args()
    steps = args.steps or (2 if args.quick else 8)
    repeats = args.repeats or (1 if args.quick else 5)
    jit_modes = {"off": [False], "on": [True], "both": [False, True]}[args.jit_compile]

    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    batch = (
        (
            rng.integers(1, args.vocab, (args.batch_size, args.source_len)).astype("int32"),
            rng.integers(1, args.vocab, (args.batch_size, args.target_len)).astype("int32"),
        ),
        rng.integers(1, args.vocab, (args.batch_size, args.target_len)).astype("int32"),
    )
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    tokens = args.batch_size * args.target_len * steps
    print(
        f"decoder throughput: batch {args.batch_size}, source {args.source_len}, target {args.target_len}, "
        f"embedding {args.embed_dim}, units {args.units}, vocabulary {args.vocab}; "
        f"{repeats} interleaved repeats of {steps} training steps, {os.cpu_count()} CPUs"
    )

    models, failed = {}, {}
    for jit in jit_modes:
        for kind in REFERENCES + CANDIDATES:
            model = build(kind, args.vocab, args.embed_dim, args.units)
            model.compile(
                optimizer="adam",
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                jit_compile=jit,
            )
            start = time.perf_counter()
            try:
                model.fit(dataset, steps_per_epoch=2, epochs=1, verbose=0)  # warm-up: tracing and compiling
            except tf.errors.OpError as error:
                failed[(kind, jit)] = _summary(error)
                print(f"  {kind} (jit_compile={jit}) does not train: {failed[(kind, jit)]}", flush=True)
                continue
            print(
                f"  built {kind} (jit_compile={jit}): {model.count_params()} parameters, "
                f"warm-up {time.perf_counter() - start:.1f}s",
                flush=True,
            )
            models[(kind, jit)] = model

    keys = list(models)
    seconds = {key: [] for key in keys}
    for repeat in range(repeats):
        order = keys[repeat % len(keys) :] + keys[: repeat % len(keys)]
        for key in order:
            start = time.perf_counter()
            models[key].fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
            seconds[key].append(time.perf_counter() - start)
        print(f"  repeat {repeat + 1}/{repeats}: " + ", ".join(
            f"{_label(key)} {seconds[key][-1]:.2f}s" for key in keys), flush=True)

    def ratio(numerator, denominator):
        """Median over repeats of the per-repeat speed ratio numerator / denominator, or None."""
        if numerator not in seconds or denominator not in seconds:
            return None
        return statistics.median(d / n for n, d in zip(seconds[numerator], seconds[denominator]))

    def show(value):
        return "n/a (does not train)" if value is None else f"{value:.2f}"

    for key in keys:
        print(f"tokens/sec {_label(key)}={tokens / statistics.median(seconds[key]):.0f}")
    if len(jit_modes) == 2:
        print("xla/no_xla, same model (speed-up from jit_compile=True): " + ", ".join(
            f"{kind}={show(ratio((kind, True), (kind, False)))}" for kind in REFERENCES + CANDIDATES))
    # The headline lines come last: jit_compile=False (what "auto" picks on a CPU-only machine).
    for jit in sorted(jit_modes, reverse=True):
        tag = "" if not jit else "[xla]"
        print(f"luong_no_feed/reference_dot{tag}={show(ratio(('luong_no_feed', jit), ('reference_dot', jit)))}")
        for kind in CANDIDATES:
            print(f"{kind}/reference{tag}={show(ratio((kind, jit), ('reference', jit)))}")


def _label(key):
    kind, jit = key
    return kind + ("+xla" if jit else "")


def _summary(error):
    """One informative line of a TensorFlow error (its first line is often just 'Graph execution error')."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    informative = [line for line in lines if "XLA" in line or "requires" in line]
    return f"{type(error).__name__}: {(informative or lines or [''])[0]}"


if __name__ == "__main__":
    main()
