"""The output layer of a training step, computed at the real (unmasked) target positions only.

A batch of targets padded to its longest row is about half padding on unbucketed Bible verses.
The output layer (a (D, V) product over a vocabulary of thousands, forward and both gradients)
is the largest single cost of a training step, and at padded positions its result is thrown away:
the target mask the logits carry is applied to every Keras loss and metric, so a padded position
contributes neither a loss nor a gradient. `at_real_positions` gathers the real positions, runs
the layer on them and scatters the result back, zeros at padding: the same loss, the same
gradients, about half the work of the layer on unbucketed batches (`benchmarks/real_positions.py`).

Written by hand because Keras has no masked-rows form of a layer (PyTorch users get it from packed
sequences). TensorFlow only, outside XLA: the number of real positions changes with the data.
"""

import keras

from keras_attn_zoo.layers.scan import padded_enough


def at_real_positions(fn, inputs, mask):
    """`fn` over the positions of `inputs` (batch, T, D) where `mask` (batch, T) is True; zeros elsewhere.

    `fn` maps (N, D) rows to (N, V) rows (and (batch, T, D) to (batch, T, V)); the result is
    (batch, T, V). A batch that is at least 80% real runs `fn` over every position instead (values
    at the padded positions then): on bucketed batches (88-96% real, what `attn-zoo train` makes)
    the gather and scatter cost more than the padding they skip (measured: 0.84x).
    """
    import tensorflow as tf

    inputs = tf.convert_to_tensor(inputs)
    mask = tf.cast(mask, tf.bool)

    def real_only():
        positions = tf.where(mask)  # (N, 2), row-major: the order of the real positions
        rows = fn(tf.gather_nd(inputs, positions))
        shape = tf.concat([tf.shape(inputs, out_type=tf.int64)[:-1], tf.shape(rows, out_type=tf.int64)[-1:]], 0)
        outputs = tf.scatter_nd(positions, rows, shape)
        outputs.set_shape(inputs.shape[:-1] + rows.shape[-1:])
        return outputs

    padded = padded_enough(tf.math.count_nonzero(mask, dtype=tf.int32), tf.size(mask))
    return tf.cond(padded, real_only, lambda: fn(inputs))


def applies(layer, inputs, mask, training):
    """Whether `layer` (with its runtime flag `real_positions_only`) computes only at the real positions."""
    return (
        layer.real_positions_only
        and training
        and mask is not None
        and len(inputs.shape) == 3
        and keras.backend.backend() == "tensorflow"
    )


@keras.saving.register_keras_serializable(package="keras_attn_zoo")
class OutputProjection(keras.layers.Dense):
    """`keras.layers.Dense`, the logits layer of the zoo's models; in a training call with
    `real_positions_only` set, computed at the positions the mask holds real only (see the module).

    `real_positions_only` is a runtime setting, off by default (a Dense layer then): the zoo's
    models turn it on in `compile` on TensorFlow without XLA. Not saved; no effect outside training
    calls, and none at real positions.
    """

    real_positions_only = False

    def call(self, inputs, training=None, mask=None):
        if applies(self, inputs, mask, training):
            return at_real_positions(lambda rows: super(OutputProjection, self).call(rows), inputs, mask)
        return super().call(inputs, training=training)
