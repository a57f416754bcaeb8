"""The GRU step written out, and Keras' GRU layer trained with the input products of all steps at once.

Keras 3.15's `GRU` on a CPU runs `GRUCell` at every step, and the cell multiplies the step's input
by its kernel there: per step a small product forward, and two more (the input's and the kernel's
gradients) backward. None of them depends on the recurrence, so a training call here does one
product over all steps before the loop and one for each gradient after it; the loop keeps only
the recurrent product. Measured on the peer benchmark's model (a bidirectional encoder of 256
units a direction): 1.03x training tokens per second on batches of 64 unbucketed verses, 1.08x on
the Bible recipe model's bucketed batches (`python benchmarks/encoder_inputs.py`).
"""

import keras
from keras import ops

from keras_attn_zoo.layers import linear
from keras_attn_zoo.layers.scan import scan


def gru_step(cell, projected_input, h):
    """The new state of a `keras.layers.GRUCell` (reset_after=True, sigmoid gates, tanh candidate)
    from its input already multiplied by the kernel, plus the input bias, and the state `h`.

    The recurrent product goes through `linear.matmul` (a transposed copy inside a training loop).
    """
    x_z, x_r, x_h = ops.split(projected_input, 3, axis=-1)
    h_z, h_r, h_h = ops.split(linear.matmul(h, cell.recurrent_kernel) + cell.bias[1], 3, axis=-1)
    z = ops.sigmoid(x_z + h_z)
    r = ops.sigmoid(x_r + h_r)
    candidate = ops.tanh(x_h + r * h_h)
    return z * h + (1 - z) * candidate


@keras.saving.register_keras_serializable(package="keras_attn_zoo")
class GRU(keras.layers.GRU):
    """`keras.layers.GRU` whose training call multiplies the inputs of all steps by the kernel at once.

    The same weights, arguments, outputs and states as Keras' layer (masked steps keep the state,
    and the previous output or zeros with `zero_output_for_mask`, which `Bidirectional` sets, as
    Keras does; `go_backwards` returns the outputs in reverse). Calls
    that do not train, and configurations the written-out step does not cover (dropout inside the
    cell, `reset_after=False`, other activations, no bias, `unroll`, `return_sequences=False`),
    run Keras' own loop.
    """

    # A runtime setting for comparisons (benchmarks, tests): off, training runs Keras' loop. Not saved.
    project_inputs_at_once = True

    def _covered(self):
        cell = self.cell
        return (
            cell.reset_after
            and cell.use_bias
            and not cell.dropout
            and not cell.recurrent_dropout
            and cell.activation is keras.activations.tanh
            and cell.recurrent_activation is keras.activations.sigmoid
            and self.return_sequences
            and not self.unroll
        )

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if not (training and self.project_inputs_at_once and self._covered()):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        state = initial_state[0] if isinstance(initial_state, (list, tuple)) else initial_state
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        projected = ops.matmul(sequences, self.cell.kernel) + self.cell.bias[0]
        steps = ops.transpose(projected, (1, 0, 2))
        masks = ops.ones(ops.shape(steps)[:2], dtype="bool") if mask is None else ops.transpose(ops.cast(mask, "bool"))
        if self.go_backwards:
            steps, masks = ops.flip(steps, 0), ops.flip(masks, 0)

        def step(carry, inputs):
            h, previous_output = carry
            projected_t, real = inputs
            new = gru_step(self.cell, projected_t, h)
            real = real[:, None]
            output = ops.where(real, new, ops.zeros_like(new) if self.zero_output_for_mask else previous_output)
            return (ops.where(real, new, h), output), output

        # A masked step's output is the previous one: before any real step, zeros on TensorFlow and
        # the initial state on JAX (Keras 3.15's backends differ there; each is matched).
        before = state if keras.backend.backend() == "jax" else ops.zeros_like(state)
        with linear.transposed_weights([self.cell.recurrent_kernel]):
            (state, last_output), outputs = scan(step, (state, before), (steps, masks))
        return last_output, ops.transpose(outputs, (1, 0, 2)), [state]
