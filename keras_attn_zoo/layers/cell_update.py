"""One step of a Keras `GRUCell` / `LSTMCell` from an input projection computed elsewhere.

`keras.layers.GRUCell` and `LSTMCell` multiply their whole input by the kernel at every step. A
decoder whose input is partly known before the loop (the embedded target tokens) can project that
part for all steps at once, one large product instead of one small product per step (and, in the
backward pass, one weight gradient instead of one per step to accumulate); the loop then adds only
the projection of what the recurrence itself produces (the attention context, the fed-back
output). These functions finish the step from such a projection with the cell's own weights and
activations, computing what the cell's `call` computes (Keras 3's `implementation=2` for GRU with
`reset_after=True`, the default, and LSTM), so checkpoints and the cells' configs are unchanged.
"""

from keras import ops


def input_bias(cell):
    """The bias added to the input projection x W (the first row of a reset-after GRU bias)."""
    if not cell.use_bias:
        return None
    if _is_gru(cell):
        return cell.bias[0] if cell.reset_after else cell.bias
    return cell.bias


def cell_update(cell, projected, states):
    """`(output, new_states)` of `cell` given `projected` = x W + b (the input projection, bias included).

    `states` is the cell's list of states ([h] for GRU, [h, c] for LSTM).
    """
    dtype = projected.dtype
    recurrent_kernel = ops.cast(cell.recurrent_kernel, dtype)
    if _is_gru(cell):
        if not cell.reset_after:
            raise ValueError(f"Received: a GRUCell with reset_after=False; {__name__} supports reset_after=True.")
        (h,) = states[:1]
        inner = ops.matmul(h, recurrent_kernel)
        if cell.use_bias:
            inner = inner + ops.cast(cell.bias[1], dtype)
        # `split`, not slices: the gradient of a split is one concatenation, where each slice's
        # gradient writes a zero-padded copy of the whole projection.
        x_z, x_r, x_h = ops.split(projected, 3, axis=-1)
        inner_z, inner_r, inner_h = ops.split(inner, 3, axis=-1)
        z = cell.recurrent_activation(x_z + inner_z)
        r = cell.recurrent_activation(x_r + inner_r)
        hh = cell.activation(x_h + r * inner_h)
        h = z * h + (1 - z) * hh
        return h, [h]
    h, c = states[0], states[1]
    z = projected + ops.matmul(h, recurrent_kernel)
    z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
    i = cell.recurrent_activation(z_i)
    f = cell.recurrent_activation(z_f)
    c = f * c + i * cell.activation(z_c)
    o = cell.recurrent_activation(z_o)
    h = o * cell.activation(c)
    return h, [h, c]


def _is_gru(cell):
    return hasattr(cell, "reset_after")
