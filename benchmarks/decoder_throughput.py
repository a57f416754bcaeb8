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
also timed, as the closer reference for the multiplicative Luong score.

A training step is forward + backward + optimizer update (`model.fit`). The models are timed
interleaved in blocks of about `--block-seconds` (the order rotates each repeat), warm-up
excluded, and each ratio is the median over repeats of candidate speed / reference speed measured
in the same repeat. Both `jit_compile=False` and `jit_compile=True` (XLA) are measured, and each
ratio compares models compiled the same way.

Two clocks are read for every block: the wall clock (tokens/sec) and the process CPU time (all
threads: the work done per token). On a shared machine the wall clock jumps with other people's
jobs while the CPU time barely moves, so the headline ratios, printed last, use `--clock cpu`
by default; the wall-clock ratios are printed just above them.

    python benchmarks/decoder_throughput.py
    python benchmarks/decoder_throughput.py --quick
"""

import argparse
import os
import statistics
import time

from keras_attn_zoo.native_logs import quiet_import  # noqa: E402

quiet_import("keras")  # TensorFlow's load-time log lines silenced; oneDNN stays on

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_attn_zoo.layers import AttentionDecoder  # noqa: E402

REFERENCES = ("reference", "reference_dot")
CANDIDATES = ("bahdanau", "luong_no_feed")
# The ratios reported: (candidate, reference).
PAIRS = (("luong_no_feed", "reference_dot"), ("bahdanau", "reference"), ("luong_no_feed", "reference"))


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
    parser.add_argument(
        "--block-seconds", type=float, default=None,
        help="length of one timed block of training steps, set per model from a trial block (default 2)",
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed blocks per model (default 7)")
    parser.add_argument(
        "--budget", type=float, default=150.0,
        help="stop repeating (after at least 3 repeats) once the timed blocks have taken this many seconds",
    )
    parser.add_argument(
        "--jit-compile", choices=("off", "on", "both"), default=None,
        help="compile the models without XLA, with it, or both (default; 'off' with --quick)",
    )
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu", help="the clock of the headline ratios")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="one short repeat without XLA, to check the script works")
    args = parser.parse_args()
    block_seconds = args.block_seconds or (0.5 if args.quick else 2.0)
    repeats = args.repeats or (1 if args.quick else 7)
    jit_choice = args.jit_compile or ("off" if args.quick else "both")
    jit_modes = {"off": [False], "on": [True], "both": [False, True]}[jit_choice]

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
    tokens_per_step = args.batch_size * args.target_len
    print(
        f"decoder throughput: batch {args.batch_size}, source {args.source_len}, target {args.target_len}, "
        f"embedding {args.embed_dim}, units {args.units}, vocabulary {args.vocab}; up to {repeats} interleaved "
        f"repeats of ~{block_seconds}s blocks of training steps, {os.cpu_count()} CPUs",
        flush=True,
    )

    models, steps = {}, {}
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
                print(f"  {_label((kind, jit))} does not train: {_summary(error)}", flush=True)
                continue
            warm_up = time.perf_counter() - start
            start = time.perf_counter()
            model.fit(dataset, steps_per_epoch=3, epochs=1, verbose=0)  # trial block
            # Blocks of equal length rather than of equal steps: on a shared machine the wall clock
            # moves in coarse jumps, which a short block would magnify.
            steps[(kind, jit)] = max(2, round(block_seconds * 3 / (time.perf_counter() - start)))
            models[(kind, jit)] = model
            print(
                f"  built {_label((kind, jit))}: {model.count_params()} parameters, warm-up {warm_up:.1f}s, "
                f"{steps[(kind, jit)]} steps per block",
                flush=True,
            )

    keys = list(models)
    clocks = {"wall": {key: [] for key in keys}, "cpu": {key: [] for key in keys}}
    started = time.perf_counter()
    for repeat in range(repeats):
        order = keys[repeat % len(keys) :] + keys[: repeat % len(keys)]
        for key in order:
            wall, cpu = time.perf_counter(), time.process_time()
            models[key].fit(dataset, steps_per_epoch=steps[key], epochs=1, verbose=0)
            clocks["wall"][key].append(time.perf_counter() - wall)
            clocks["cpu"][key].append(time.process_time() - cpu)
        print(f"  repeat {repeat + 1}: " + ", ".join(
            f"{_label(key)} {clocks['wall'][key][-1]:.2f}s (cpu {clocks['cpu'][key][-1]:.2f}s)" for key in keys),
            flush=True)
        if repeat + 1 >= 3 and time.perf_counter() - started > args.budget:
            print(f"  stopping after {repeat + 1} repeats: the {args.budget:.0f}s budget is spent", flush=True)
            break

    def rate(key, clock):
        """Median tokens per second of `clock` for one model."""
        return statistics.median(tokens_per_step * steps[key] / t for t in clocks[clock][key])

    def ratio(numerator, denominator, clock):
        """Median over repeats of the speed ratio numerator / denominator in the same repeat."""
        if numerator not in models or denominator not in models:
            return "n/a (does not train)"
        times = zip(clocks[clock][numerator], clocks[clock][denominator])
        return f"{statistics.median((steps[numerator] / n) / (steps[denominator] / d) for n, d in times):.2f}"

    print("tokens/sec (wall clock): " + ", ".join(f"{_label(key)}={rate(key, 'wall'):.0f}" for key in keys))
    print("tokens per CPU-second: " + ", ".join(f"{_label(key)}={rate(key, 'cpu'):.0f}" for key in keys))
    if len(jit_modes) == 2:
        for clock in ("wall", "cpu"):
            print(f"xla/no_xla ({clock}), same model: " + ", ".join(
                f"{kind}={ratio((kind, True), (kind, False), clock)}" for kind in REFERENCES + CANDIDATES))
    other = "wall" if args.clock == "cpu" else "cpu"
    for jit in jit_modes:
        print(f"{other}-clock ratios{' [xla]' if jit else ''}: " + ", ".join(
            f"{c}/{r}={ratio((c, jit), (r, jit), other)}" for c, r in PAIRS))
    if True in jit_modes and False in jit_modes:
        print(f"{args.clock}-clock ratios [xla]: " + ", ".join(
            f"{c}/{r}={ratio((c, True), (r, True), args.clock)}" for c, r in PAIRS))
    # The headline lines come last: jit_compile=False where measured (what "auto" picks on a CPU).
    headline = False if False in jit_modes else True
    print(f"headline: {args.clock} clock, jit_compile={headline}")
    for c, r in PAIRS:
        print(f"{c}/{r}={ratio((c, headline), (r, headline), args.clock)}")


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
