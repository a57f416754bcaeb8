"""How much of this CPU's arithmetic a training step uses: useful GFLOP/s against the matrix products' own rate.

    [KERAS_BACKEND=jax] python benchmarks/arithmetic_rate.py [--rounds 3]

Three measurements in one process:

- the rate of the matrix products the peer-sized model's step is made of (64 rows by the decoder's
  kernels, and the output layer over 2,560 rows), each a chain of 50 products compiled into one
  function: GFLOP/s (2 per multiply-add);
- the multiply-adds of one training step per real target token, counted from the model's kernels
  (each kernel of k x n costs k * n per token it reads; the backward pass twice the forward; the
  encoder's per source token, scaled by the batches' source / target tokens; attention scores'
  elementwise work, embeddings, losses and the optimizer not counted);
- the training tokens/s of `benchmarks/peer_training.py`'s model on its 4 unbucketed batches
  (`benchmarks/packed_rows.py`'s case, `keep_freed_memory` on).

Prints the useful GFLOP/s (tokens/s times FLOP per token) and its ratio to the products' median
rate: the share of the CPU's product speed that reaches the model's arithmetic. Padding the step
skips is not counted as useful work.
"""

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import packed_rows  # noqa: E402 (the peer benchmark's case)

CHAIN = 50
# (rows, k, n): the decoder step's products (query, context and recurrent, readout) and the output layer's.
SHAPES = [(64, 512, 512), (64, 512, 1536), (64, 1536, 512), (64, 1280, 512), (2560, 512, 5308)]


def product_rate(keras, rows, k, n):
    """GFLOP/s of a chain of `CHAIN` (rows, k) x (k, n) products compiled into one function."""
    from keras import ops

    rng = np.random.default_rng(0)
    a = ops.convert_to_tensor(rng.random((rows, k), dtype="float32"))
    b = ops.convert_to_tensor(rng.random((k, n), dtype="float32"))
    back = ops.convert_to_tensor(rng.random((n, k), dtype="float32") / n)

    def chain(a, b, back):
        total = ops.zeros((rows, n))
        for _ in range(CHAIN):
            product = ops.matmul(a, b)
            total = total + product
            a = ops.matmul(product[:, :1], back[:1]) * 1e-3 + a  # the next input depends on this product
        return total

    compiled = _compile(keras, chain)
    ops.convert_to_numpy(compiled(a, b, back))
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        ops.convert_to_numpy(compiled(a, b, back))
        best = min(best, time.perf_counter() - started)
    return 2 * rows * k * n * CHAIN / best / 1e9


def _compile(keras, function):
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(function)
    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(function)
    return function


def step_flops_per_target_token(model, source_per_target):
    """Training FLOP (2 per multiply-add, backward = 2 x forward) per real target token, from the kernels."""
    per_target, per_source = 0, 0
    for weight in model.weights:
        path, size = weight.path, int(np.prod(weight.shape))
        if not path.endswith("kernel") or "bridge" in path:
            continue
        if path.startswith("encoder") or path.endswith("key_kernel"):
            per_source += size  # once per source token (the keys are projected once per source)
        elif path.startswith("decoder/") or path.startswith("output_projection/"):
            per_target += size
    return 2 * 3 * (per_target + per_source * source_per_target)


def main():
    args = packed_rows.peer_arguments(__doc__)
    from keras_attn_zoo import allocator
    from keras_attn_zoo.native_logs import quiet_import

    allocator.keep_freed_memory()
    keras = quiet_import("keras")
    rates = {shape: product_rate(keras, *shape) for shape in SHAPES}
    for (rows, k, n), rate in rates.items():
        print(f"products {rows} x {k} by {k} x {n}: {rate:.1f} GFLOP/s")
    reference = statistics.median(rates.values())

    model, batches = packed_rows.peer_case(keras, args)
    packed_rows.compile_as_peer(keras, model)
    targets = sum(int((labels != 0).sum()) for _, labels in batches)
    sources = sum(int((x["source_ids"] != 0).sum()) for x, _ in batches)
    flops = step_flops_per_target_token(model, sources / targets)
    for x, y in batches:  # trace every shape
        model.train_on_batch(x, y)
    speeds = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        for x, y in batches:
            model.train_on_batch(x, y)
        speeds.append(targets / (time.perf_counter() - started))
    speed = statistics.median(speeds)
    useful = speed * flops / 1e9
    print(f"training: {flops / 1e6:.1f} MFLOP per real target token ({sources / targets:.3f} source tokens each); "
          f"tokens/s {[round(s) for s in speeds]}, median {speed:.0f}")
    print(f"useful {useful:.1f} GFLOP/s / products' median rate {reference:.1f} GFLOP/s: {useful / reference:.2f}")
    print(f"(each 10 GFLOP/s of useful work is {1e10 / flops:.0f} target tokens/s)")


if __name__ == "__main__":
    main()
