"""`scan` for decoder loops, on every Keras backend.

Written by hand because `keras.ops.scan` on the TensorFlow and torch backends (Keras 3.15) stores
the per-step outputs in buffers shaped like the carry: a step that returns something else (an
output vector and attention weights, next to a dict of cell states) is mis-shaped there. JAX's
`lax.scan` has no such limit and is used as is.
"""

import keras
from keras import ops
from keras import tree


def scan(f, init, xs):
    """`carry, ys = scan(f, init, xs)` with `f(carry, x) -> (carry, y)`, like `jax.lax.scan`.

    `xs` and `y` are nested structures of tensors with time first; `y` may have any structure.
    The sequence must have at least one step.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tf_scan(f, init, xs)
    if backend == "jax":
        return ops.scan(f, init, xs)
    return _python_scan(f, init, xs)


def _tf_scan(f, init, xs):
    import tensorflow as tf

    xs_flat = [tf.convert_to_tensor(x) for x in tree.flatten(xs)]
    steps = tf.shape(xs_flat[0])[0]
    xs_arrays = [
        tf.TensorArray(x.dtype, size=steps, element_shape=x.shape[1:]).unstack(x) for x in xs_flat
    ]

    def read(t):
        return tree.pack_sequence_as(xs, [a.read(t) for a in xs_arrays])

    # The first step runs before the loop: it tells the structure, dtypes and shapes of `y`, which
    # the output TensorArrays need before the loop is built.
    carry, y = f(init, read(0))
    y_flat = tree.flatten(y)
    ys_arrays = [
        tf.TensorArray(v.dtype, size=steps, element_shape=v.shape).write(0, v) for v in y_flat
    ]
    carry_flat = tree.flatten(carry)
    init_flat = tree.flatten(init)
    # Keep the loop variables' static shapes exactly those of `init` (the batch may be unknown).
    carry_flat = [tf.ensure_shape(c, i.shape) for c, i in zip(carry_flat, init_flat)]

    def body(t, carry_flat, ys_arrays):
        carry, y = f(tree.pack_sequence_as(init, carry_flat), read(t))
        return (
            t + 1,
            [tf.ensure_shape(c, i.shape) for c, i in zip(tree.flatten(carry), init_flat)],
            [a.write(t, v) for a, v in zip(ys_arrays, tree.flatten(y))],
        )

    # maximum_iterations gives XLA (jit_compile=True, Keras' default on GPUs) the fixed list size
    # its gradient accumulators need.
    _, carry_flat, ys_arrays = tf.while_loop(
        lambda t, *_: t < steps, body, (tf.constant(1), carry_flat, ys_arrays), maximum_iterations=steps - 1
    )
    ys = [a.stack() for a in ys_arrays]
    return tree.pack_sequence_as(init, carry_flat), tree.pack_sequence_as(y, ys)


def _python_scan(f, init, xs):
    xs_flat = tree.flatten(xs)
    carry, ys = init, []
    for t in range(int(ops.shape(xs_flat[0])[0])):
        carry, y = f(carry, tree.pack_sequence_as(xs, [x[t] for x in xs_flat]))
        ys.append(tree.flatten(y))
    stacked = [ops.stack(column) for column in zip(*ys)]
    return carry, tree.pack_sequence_as(y, stacked)


def scan_real_rows(f, init, xs, lengths, context=None, segments=8):
    """`scan`'s outputs, computed for each row over (about) its real steps only (TensorFlow only).

    On a batch padded to its longest row, a dense loop spends much of its work on padding (about
    half on unbucketed Bible verses). Here the rows are sorted by length (longest first) and the
    steps cut into `segments` equal spans; each span runs only the rows still real at its start,
    so a row stops costing at the end of the span in which it ends. This is PyTorch's packed
    sequences, coarsened: cutting the rows at every step instead made the forward pass 27% faster
    but the training step no faster (the gradient of the per-step cuts of the memory costs what
    the cuts save); once per span it is paid `segments` times.

    `f(carry, x, context) -> (carry, y)` is called with the carry, the step's `x` and `context`
    (any batch-first structure of tensors the step reads, such as the memory; None leaves stay
    None) cut to the span's rows. Batches of fewer steps than `segments`, or that are at least 80%
    real steps, run as one dense loop.
    Needs shapes that change with the data: not for XLA (`jit_compile=True`), nor JAX.

    Args:
        f: the step function.
        init: the initial carry, batch-first tensors.
        xs: time-first inputs (T, batch, ...).
        lengths: (batch,) real steps of each row.
        context: batch-first tensors `f` reads at every step.
        segments: how many spans the steps are cut into.

    Returns:
        the time-first outputs `ys`, in the input's row order, zeros past each row's length.
    """
    import tensorflow as tf

    def each(fn, *structures):
        return tree.map_structure(lambda t, *rest: None if t is None else fn(t, *rest), *structures)

    lengths = tf.cast(lengths, tf.int32)
    order = tf.argsort(lengths, direction="DESCENDING", stable=True)
    init = each(lambda t: tf.gather(t, order), init)
    xs = each(lambda t: tf.gather(t, order, axis=1), xs)
    context = each(lambda t: tf.gather(t, order), context)
    sorted_lengths = tf.gather(lengths, order)
    steps = tf.shape(tree.flatten(xs)[0])[0]
    batch = tf.shape(lengths)[0]

    def dense():
        return _tf_scan(lambda carry, x: f(carry, x, context), init, xs)[1]

    def by_span():
        bounds = [k * steps // segments for k in range(segments)] + [steps]
        carry, parts = init, []
        for start, stop in zip(bounds[:-1], bounds[1:]):
            # At least one row: a span past every row's end (padding beyond the longest) runs one
            # row for nothing rather than none, which some ops refuse.
            rows = tf.maximum(tf.reduce_sum(tf.cast(sorted_lengths > start, tf.int32)), 1)
            carry = each(lambda t: t[:rows], carry)
            span_context = each(lambda t: t[:rows], context)
            carry, ys = _tf_scan(
                lambda c, x: f(c, x, span_context), carry, each(lambda t: t[start:stop, :rows], xs)
            )
            parts.append(each(lambda v: tf.pad(v, [[0, 0], [0, batch - rows]] + [[0, 0]] * (v.shape.rank - 2)), ys))
        return each(lambda *spans: tf.concat(spans, 0), *parts)

    # Spans pay where padding is a good part of the batch; on bucketed batches (`attn-zoo train`)
    # they cost about 4% (measured), so a batch that is at least 80% real runs the dense loop.
    padded = padded_enough(tf.reduce_sum(sorted_lengths), batch * steps)
    ys = tf.cond(tf.logical_and(steps >= segments, padded), by_span, dense)
    real = tf.range(steps)[:, None] < sorted_lengths[None, :]  # (T, batch)
    inverse = tf.math.invert_permutation(order)

    def restore(v):
        v = v * tf.cast(tf.reshape(real, tf.concat([tf.shape(real), tf.ones([v.shape.rank - 2], tf.int32)], 0)), v.dtype)
        return tf.gather(v, inverse, axis=1)

    return each(restore, ys)


def padded_enough(real, total):
    """Whether skipping padding pays: fewer than 80% of `total` positions are `real` (int32 tensors).

    The one rule for every place that skips padding in training (the decoder's spans here, the
    logits in `real_positions`): on bucketed batches (82-96% real, `attn-zoo train`'s) each
    measured a loss from skipping (spans about 4%, the logits' gather and scatter 16%).
    """
    return 5 * real < 4 * total
