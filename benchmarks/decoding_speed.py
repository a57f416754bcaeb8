"""Decoding speed of `Seq2Seq.generate` against a Python loop, and training speed of the three recipes.

Decoding. A Seq2Seq the size of `recipes/bible_en_es_bahdanau.toml` (Bahdanau attention, GRU,
embedding 256, units 256, bidirectional encoder, tied embeddings) with a 4000-piece vocabulary and
random weights translates a batch of 64 random sources of 30 tokens. Every output is forced to the
same length, `--max-length` tokens (eos included): `min_length = max_length - 1` forbids eos until
the last position, where the search must emit it, so every method runs exactly `max_length`
decoder steps per sentence whatever the weights. Timed:

- `greedy`: `model.generate(beam_size=1, jit_compile=False)`, the whole search one compiled
  `tf.function` loop (what "auto", `generate`'s default, gives on a CPU-only machine);
- `greedy_xla`: the same with `jit_compile=True`, the loop compiled by XLA (the default where
  TensorFlow sees a GPU, and on JAX);
- `beam5`, `beam5_xla`: the same two with 5 hypotheses per sentence;
- `naive`, the reference: the loop of the TensorFlow NMT tutorial, run eagerly from Python with
  the same model: encode once, then per token embed the previous token, `decoder.step`, project
  to logits, argmax (with eos masked until the last position, so it makes the same outputs as
  `greedy`, which is checked; the random target embeddings are scaled up tenfold so that float
  rounding does not decide between near-equal logits);
- `floor`, `floor_xla`, not decoders: the same encoder, decoder step, logits and argmax in one
  loop compiled the same two ways, with nothing else (no eos, no scores, no limits, no attention
  kept): what the model's own arithmetic costs per token. `greedy` close to `floor` means the
  search adds little; `floor/naive` is about the most a search loop over this step can reach.

The warm-up lines show what compiling costs: XLA compiles once per input shape.

Training. Target tokens per second of one `fit` step (forward, backward, Adam update) for each of
`recipes/bible_en_es_{bahdanau,luong,seq2seq}.toml`, built with its `[recipe]` options and a
4000-piece vocabulary, on a fixed random batch of 64 pairs of 40 tokens (no padding), compiled
as `keras_attn_zoo.training.train` compiles it; reported also as a ratio to the seq2seq baseline.

Every candidate is timed once per repeat, interleaved (the order rotates each repeat), after a
warm-up call that traces and compiles; each ratio is the median over repeats of the ratio within
one repeat. The machines are shared: the absolute figures move with the load, the ratios are the
result. The last lines printed are the `<candidate>/naive=<ratio>` of every candidate.

    python benchmarks/decoding_speed.py
    python benchmarks/decoding_speed.py --skip-training   # decoding only
    python benchmarks/decoding_speed.py --quick    # smoke run
"""

import argparse
import os
import statistics
import time
from pathlib import Path

from keras_attn_zoo.native_logs import quiet_import  # noqa: E402

quiet_import("keras")  # TensorFlow's load-time log lines silenced; oneDNN stays on

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

from keras_attn_zoo.models.seq2seq import BOS_ID, EOS_ID  # noqa: E402
from keras_attn_zoo.recipes import translation  # noqa: E402
from keras_attn_zoo.training import load_recipe_file  # noqa: E402

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
RECIPE_NAMES = ("bahdanau", "luong", "seq2seq")
VOCAB = 4000


def recipe_model(name):
    """The model of recipes/bible_en_es_<name>.toml with random weights and a 4000-piece vocabulary."""
    options = dict(load_recipe_file(RECIPES / f"bible_en_es_{name}.toml")["recipe"])
    options.pop("name")
    return translation(source_vocab_size=VOCAB, target_vocab_size=VOCAB, **options), options


def naive_greedy(model, source_ids, max_length):
    """Greedy decoding the tutorial way: one eager decoder step per token, driven from Python."""
    memory, source_mask, encoder_state = model._encode(ops.convert_to_tensor(source_ids), training=False)
    bundle = model.decoder.precompute_memory(memory, source_mask)
    state = model.decoder.get_initial_state(bundle, encoder_state)
    tokens = ops.full((source_ids.shape[0],), BOS_ID, dtype="int32")
    not_eos = ops.arange(model.target_vocab_size) != EOS_ID
    outputs = []
    for t in range(max_length):
        embedded = ops.take(model.target_embedding.embeddings, tokens, axis=0)
        output, state, _ = model.decoder.step(embedded, state, bundle)
        logits = model._logits(output)
        if t < max_length - 1:
            tokens = ops.cast(ops.argmax(ops.where(not_eos, logits, -1e9), axis=-1), "int32")
        else:  # the last position: eos, as the search forces it (after the same decoder step)
            tokens = ops.full_like(tokens, EOS_ID)
        outputs.append(tokens)
    return ops.convert_to_numpy(ops.stack(outputs, axis=1))


def floor_loop(model, max_length, jit_compile=False):
    """Encoder, then `max_length` decoder steps, logits and argmax in one compiled loop; nothing else."""

    def run(source_ids):
        memory, source_mask, encoder_state = model._encode(source_ids, training=False)
        bundle = model.decoder.precompute_memory(memory, source_mask)
        state = model.decoder.get_initial_state(bundle, encoder_state)
        logits_of = model._step_logits_fn()
        embeddings = model.target_embedding.embeddings

        def body(t, tokens, state):
            output, state, _ = model.decoder.step(ops.take(embeddings, tokens, axis=0), state, bundle)
            return t + 1, ops.cast(ops.argmax(logits_of(output), axis=-1), "int32"), state

        start = ops.full((ops.shape(source_ids)[0],), BOS_ID, dtype="int32")
        return ops.while_loop(lambda t, *_: t < max_length, body, (0, start, state))[1]

    if keras.backend.backend() == "tensorflow":
        compiled = tf.function(run, jit_compile=jit_compile)
    elif keras.backend.backend() == "jax":
        import jax

        compiled = jax.jit(run)
    else:
        compiled = run
    return lambda source_ids: ops.convert_to_numpy(compiled(ops.convert_to_tensor(source_ids, "int32")))


def interleaved(candidates, repeats, budget, label):
    """Time each candidate once per repeat, rotating the order; returns {name: [(wall, cpu), ...]}."""
    names = list(candidates)
    times = {name: [] for name in names}
    started = time.perf_counter()
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            wall, cpu = time.perf_counter(), time.process_time()
            candidates[name]()
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
        print(f"  {label} repeat {repeat + 1}: " + ", ".join(f"{n} {times[n][-1][0]:.2f}s" for n in names), flush=True)
        if repeat + 1 >= 3 and time.perf_counter() - started > budget:
            print(f"  stopping after {repeat + 1} repeats: the {budget:.0f}s budget is spent", flush=True)
            break
    return times


def median_ratio(times, fast, slow, clock):
    """Median over repeats of time(slow) / time(fast): how many times faster `fast` is."""
    index = 0 if clock == "wall" else 1
    return statistics.median(s[index] / f[index] for f, s in zip(times[fast], times[slow]))


def rate(times, name, work, clock="wall"):
    index = 0 if clock == "wall" else 1
    return statistics.median(work / t[index] for t in times[name])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--source-len", type=int, default=30)
    parser.add_argument("--max-length", type=int, default=60, help="tokens per output, eos included")
    parser.add_argument("--train-len", type=int, default=40, help="source and target length of the training batch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=90.0, help="seconds of timed repeats per part (after 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="short outputs, one repeat: checks the script runs")
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.max_length, args.repeats, args.train_len = 8, 1, 8
    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    print(
        f"decoding speed: batch {args.batch_size}, sources of {args.source_len} tokens, every output "
        f"{args.max_length} tokens (min_length={args.max_length - 1}), vocabulary {VOCAB}, random weights; "
        f"{os.cpu_count()} CPUs, TensorFlow {tf.__version__}, Keras {keras.__version__}",
        flush=True,
    )

    # -- Decoding -------------------------------------------------------------------------------
    model, options = recipe_model("bahdanau")
    # Freshly initialised tied embeddings give near-uniform logits (std ~0.01), whose argmax float
    # rounding decides; ten times larger embeddings make the outputs comparable (and not constant).
    model.target_embedding.embeddings.assign(model.target_embedding.embeddings * 10.0)
    print(f"  model: bible_en_es_bahdanau.toml {options}, {model.count_params()} parameters", flush=True)
    source_ids = rng.integers(4, VOCAB, (args.batch_size, args.source_len)).astype("int32")
    search = dict(max_length=args.max_length, min_length=args.max_length - 1)
    candidates = {"naive": lambda: naive_greedy(model, source_ids, args.max_length)}
    for suffix, jit in (("", False), ("_xla", True)):
        floor = floor_loop(model, args.max_length, jit)
        candidates.update(
            {
                f"greedy{suffix}": lambda jit=jit: model.generate(source_ids, beam_size=1, jit_compile=jit, **search),
                f"beam5{suffix}": lambda jit=jit: model.generate(source_ids, beam_size=5, jit_compile=jit, **search),
                f"floor{suffix}": lambda floor=floor: floor(source_ids),
            }
        )
    results = {}
    for name, run in candidates.items():  # warm-up: tracing, compiling, first allocations
        start = time.perf_counter()
        results[name] = run()
        print(f"  warm-up {name}: {time.perf_counter() - start:.1f}s", flush=True)
    naive = results["naive"]
    for name in ("greedy", "greedy_xla"):
        assert (results[name]["lengths"] == args.max_length - 1).all(), results[name]["lengths"]
        print(
            f"  {name} and the naive loop give the same outputs: {np.array_equal(results[name]['token_ids'], naive)} "
            f"({np.mean([len(set(row)) for row in naive.tolist()]):.1f} distinct tokens per output)",
            flush=True,
        )
    times = interleaved(candidates, args.repeats, args.budget, "decoding")

    # -- Training -------------------------------------------------------------------------------
    train_rates = {}
    if not args.skip_training:
        batch = (
            {
                "source_ids": rng.integers(4, VOCAB, (args.batch_size, args.train_len)).astype("int32"),
                "target_ids": rng.integers(4, VOCAB, (args.batch_size, args.train_len)).astype("int32"),
            },
            rng.integers(4, VOCAB, (args.batch_size, args.train_len)).astype("int32"),
        )
        dataset = tf.data.Dataset.from_tensors(batch).repeat()
        trainers = {}
        for name in RECIPE_NAMES:
            trainee, _ = recipe_model(name)
            trainee.compile(
                optimizer=keras.optimizers.Adam(1e-3, clipnorm=1.0),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
            )
            start = time.perf_counter()
            trainee.fit(dataset, steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)  # warm-up
            print(f"  warm-up training {name}: {time.perf_counter() - start:.1f}s", flush=True)
            trainers[name] = lambda trainee=trainee: trainee.fit(
                dataset, steps_per_epoch=1, epochs=1, verbose=0, shuffle=False
            )
        train_times = interleaved(trainers, args.repeats, args.budget, "training")
        tokens = args.batch_size * args.train_len
        train_rates = {name: rate(train_times, name, tokens) for name in RECIPE_NAMES}

    # -- Results --------------------------------------------------------------------------------
    for clock in ("wall", "cpu"):
        figures = ", ".join(f"{n}={rate(times, n, args.batch_size, clock):.2f}" for n in candidates)
        print(f"decoding sentences/sec ({clock} clock{', per CPU-second' if clock == 'cpu' else ''}): {figures}")
    fast = [name for name in candidates if name != "naive"]
    print("cpu-clock ratios: " + ", ".join(f"{n}/naive={median_ratio(times, n, 'naive', 'cpu'):.2f}" for n in fast))
    if train_rates:
        print(
            f"training target tokens/sec (wall clock, batch {args.batch_size}x{args.train_len}): "
            + ", ".join(f"{n}={r:.0f}" for n, r in train_rates.items())
        )
        print(
            "training speed relative to seq2seq (median of per-repeat ratios): "
            + ", ".join(f"{n}/seq2seq={median_ratio(train_times, n, 'seq2seq', 'wall'):.2f}" for n in RECIPE_NAMES)
        )
    print("headline (wall clock, median of per-repeat ratios; target greedy >= 10x; floor: the step alone):")
    for name in fast:
        print(f"{name}/naive={median_ratio(times, name, 'naive', 'wall'):.2f}")


if __name__ == "__main__":
    main()
