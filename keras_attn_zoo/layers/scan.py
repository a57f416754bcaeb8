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
