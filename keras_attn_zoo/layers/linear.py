"""Matrix products of the decoder step whose TensorFlow gradient runs without a transposed MatMul.

Written by hand because TensorFlow differentiates `x @ W` into `dy @ Wᵀ` as a MatMul with
`transpose_b=True`, which on this CPU (TensorFlow 2.21, oneDNN on) takes 2-2.4x as long as the
same product against a transposed copy of W (64 x 1536 by 1536 x 768: 4.1 against 1.9 ms), and
transposing inside the loop costs what it saves. A decoder's training loop does that product for
every weight at every step. So, around the loop, `transposed_weights(kernels)` makes one copy of
each kernel's transpose; inside it, `matmul(x, kernel)` is differentiated as `dy @ copy` (the
weight's own gradient, `xᵀ dy`, is TensorFlow's). Other backends, and calls outside the block,
use `keras.ops.matmul` as is.
"""

import contextlib
import threading

import keras
from keras import ops

_copies = threading.local()  # .kernels: {id(kernel variable): (value, transposed value)} inside the block


@contextlib.contextmanager
def transposed_weights(kernels):
    """Within the block, `matmul(x, kernel)` for each of `kernels` reads the kernel once, here,
    and its gradient uses a transpose made here, once (TensorFlow; elsewhere a no-op)."""
    if keras.backend.backend() != "tensorflow" or not kernels:
        yield
        return
    import tensorflow as tf

    previous = getattr(_copies, "kernels", None)
    values = {}
    for kernel in kernels:
        value = tf.convert_to_tensor(kernel)
        values[id(kernel)] = (value, tf.transpose(value))
    _copies.kernels = {**(previous or {}), **values}
    try:
        yield
    finally:
        _copies.kernels = previous


def has_copy(kernel):
    """Whether `kernel` is one of the innermost `transposed_weights` block's kernels."""
    copies = getattr(_copies, "kernels", None)
    return bool(copies) and id(kernel) in copies


def matmul(x, kernel):
    """`x @ kernel` for a rank-2 x; see the module's docstring for its gradient."""
    copies = getattr(_copies, "kernels", None)
    entry = copies.get(id(kernel)) if copies else None
    if entry is None or len(x.shape) != 2:
        return ops.matmul(x, kernel)
    value, transposed = entry
    return _matmul_with_copy(x, ops.cast(value, x.dtype), ops.cast(transposed, x.dtype))


def _matmul_with_copy(x, value, transposed):
    import tensorflow as tf

    if tf.executing_eagerly():  # the gradient below is recorded on graphs (tf.function) only
        return tf.matmul(x, value)
    _register_gradient()
    # The product of inputs cut from the tape, passed through an IdentityN over it and the inputs,
    # whose gradient is `_matmul_gradient`: it reads the inputs from the op, as TensorFlow's own
    # gradients do (a `tf.custom_gradient` closure over them broke inside the `tf.cond` of
    # `scan_real_rows`). Recorded twice, as `tf.custom_gradient` does: the op's gradient override,
    # which TensorFlow's graph gradients read (inside while loops and conds), and a tape record,
    # which a `GradientTape` at the function's top level reads (it looks gradients up by op type).
    tensors = [tf.matmul(tf.stop_gradient(x), tf.stop_gradient(value)), x, value, transposed]
    with tf.compat.v1.get_default_graph().gradient_override_map({"IdentityN": _GRADIENT}):
        outputs = tf.identity_n(tensors)
    tf.__internal__.record_gradient(_GRADIENT, tensors, (), outputs)
    return outputs[0]


_GRADIENT = "AttnZooMatMulWithCopy"
_registered = []  # not empty once the gradient is registered with TensorFlow (once per process)


def _register_gradient():
    if _registered:
        return
    import tensorflow as tf

    @tf.RegisterGradient(_GRADIENT)
    def _matmul_gradient(op, dy, *unused):
        _, x, _, transposed = op.inputs
        return [None, tf.matmul(dy, transposed), tf.matmul(x, dy, transpose_a=True), None]

    _registered.append(True)
