"""The call contract shared by every attention layer of the zoo.

A concrete layer says how keys are projected once per source (`process_key`) and how a query is
scored against projected keys (`score`). Everything else lives here, once: unpacking
`[query, value(, key)]`, masking, the softmax, the weighted sum and the single-step query shape.
"""

import keras
from keras import ops

from keras_attn_zoo.layers import linear


def masked_softmax(scores, value_mask=None):
    """Softmax over the last axis that gives padded memory exactly zero weight.

    Padded positions are replaced by a large negative number that is finite in float16
    (-65504, float16's lowest value) before the softmax, and set to exactly zero after it, so a
    row whose memory is fully masked gives all-zero weights, never NaN.

    Args:
        scores: (batch, Tq, Tv) scores.
        value_mask: optional (batch, Tv) boolean or 0/1 mask, True where memory is real.
    """
    if value_mask is None:
        return ops.softmax(scores, axis=-1)
    mask = ops.expand_dims(ops.cast(value_mask, "bool"), axis=-2)
    lowest = -65504.0 if keras.backend.standardize_dtype(scores.dtype) == "float16" else -1e9
    scores = ops.where(mask, scores, ops.cast(lowest, scores.dtype))
    weights = ops.softmax(scores, axis=-1)
    return ops.where(mask, weights, ops.zeros_like(weights))


def project(x, kernel):
    """x @ kernel over the last axis of a rank-2 or rank-3 x, as one 2-D matmul.

    Keras' TensorFlow matmul turns a 3-D x 2-D product into a tensordot whose gradient inside a
    while loop XLA cannot compile (`jit_compile=True`, Keras' default on GPUs); a reshape to
    2-D and back compiles everywhere. The product is `linear.matmul`'s, so a one-step query
    (batch, 1, Dq) projected inside a decoder's training loop uses the kernel's transposed copy
    (`AttentionDecoder._loop_kernels` makes one for the query kernel).
    """
    if len(x.shape) == 2:
        return linear.matmul(x, kernel)
    shape = ops.shape(x)
    flat = linear.matmul(ops.reshape(x, (-1, x.shape[-1])), kernel)
    return ops.reshape(flat, (shape[0], shape[1], kernel.shape[-1]))


def additive_score(features, vector):
    """Σ_u tanh(features)_u v_u over the last axis: the score of additive (Bahdanau, concat) attention.

    A 2-D product with v as a column is one pass over tanh(features) where a multiply and a sum
    are two (about 10% of a Bahdanau decoder step on CPU); written 2-D for the same XLA reason as
    `project`.
    """
    shape = ops.shape(features)
    flat = ops.reshape(ops.tanh(features), (-1, features.shape[-1]))
    scores = ops.matmul(flat, ops.expand_dims(ops.cast(vector, features.dtype), -1))
    return ops.reshape(scores, shape[:-1])


def _recomputed_in_backward(score):
    """`score` whose (batch, Tv, units) intermediates the backward pass recomputes instead of storing, on JAX.

    Inside a decoder loop, JAX's `lax.scan` keeps every step's intermediates for the backward
    pass: for the additive scores the sum W_q q + W_k k and its tanh, two zero-filled buffers of
    steps x batch x Tv x units floats (420 MB for a 40-step batch of 64 at 512 units) written at
    every training step. Under `jax.checkpoint` only the products without batch dimensions (the
    projected query, the score column) are kept and the backward pass recomputes the rest. Measured
    on JAX (`benchmarks/jax_recompute.py`): 1.08x on bucketed batches (what `attn-zoo train`
    feeds), 0.99x on long unbucketed ones; in `benchmarks/peer_training.py --bucketed` JAX went
    from 0.72x to 0.93x TensorFlow's tokens/s. TensorFlow's while loop pushes each step's tensors
    without zero-filling them; the same recompute gave no gain there (a custom gradient, 1.00x), so
    other backends call `score` as it is. Values and gradients are unchanged (to float rounding).
    Scores without such intermediates (dot, general, cosine) are left alone: the recompute would
    only add work.
    """
    if keras.backend.backend() != "jax":
        return score
    import jax

    return jax.checkpoint(score, policy=jax.checkpoint_policies.dots_with_no_batch_dims_saveable)


class BaseAttention(keras.layers.Layer):
    """Base class: `layer([query, value(, key)], mask=[query_mask, value_mask])`.

    Subclasses implement `build_score(query_dim, key_dim)`, `process_key(key)` and
    `score(query, processed_key, coverage=None)`.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    # -- Subclass hooks -------------------------------------------------------------------------
    @property
    def wide_score(self):
        """Whether `score` builds (batch, Tq, Tv, units) intermediates (the additive scores), which
        decoder loops on JAX recompute in the backward pass rather than store."""
        return False

    def build_score(self, query_dim, key_dim):
        raise NotImplementedError

    def process_key(self, key):
        """Per-source work on the keys, done once and reused at every decoder step."""
        return key

    def score(self, query, processed_key, coverage=None):
        """(batch, Tq, Dq) x processed keys -> (batch, Tq, Tv) scores."""
        raise NotImplementedError

    # -- Keras plumbing -------------------------------------------------------------------------
    def build(self, input_shape):
        query_shape, value_shape, key_shape = _unpack_shapes(input_shape, self.name)
        if len(query_shape) not in (2, 3):
            raise ValueError(
                f"Layer {self.name!r}: the query must be (batch, Tq, dim) or one decoder step "
                f"(batch, dim). Received: query shape={tuple(query_shape)}"
            )
        for label, shape in (("value", value_shape), ("key", key_shape)):
            if len(shape) != 3:
                raise ValueError(
                    f"Layer {self.name!r}: the {label} must be (batch, Tv, dim). "
                    f"Received: {label} shape={tuple(shape)}"
                )
        if value_shape[1] is not None and key_shape[1] is not None and value_shape[1] != key_shape[1]:
            raise ValueError(
                f"Layer {self.name!r}: key and value must have the same length. "
                f"Received: key shape={tuple(key_shape)}, value shape={tuple(value_shape)}"
            )
        if query_shape[-1] is None or key_shape[-1] is None:
            raise ValueError(
                f"Layer {self.name!r}: the last dimension of query and key must be known. "
                f"Received: query shape={tuple(query_shape)}, key shape={tuple(key_shape)}"
            )
        self.build_score(int(query_shape[-1]), int(key_shape[-1]))
        self.built = True

    def call(self, inputs, mask=None, return_attention_scores=False, training=None):
        query, value, key = _unpack(inputs, self.name)
        query_mask, value_mask = None, None
        if mask is not None:
            query_mask = mask[0]
            value_mask = mask[2] if len(mask) > 2 and mask[2] is not None else mask[1]
        context, weights = self.attend(query, self.process_key(key), value, value_mask)
        if query_mask is not None:
            # Padded query positions get a zero context, as keras.layers.Attention does.
            context = context * ops.expand_dims(ops.cast(query_mask, context.dtype), -1)
        if return_attention_scores:
            return context, weights
        return context

    def attend(self, query, processed_key, value, value_mask=None, coverage=None):
        """Context and weights for projected keys: the step used inside decoder loops.

        `query` is (batch, Tq, Dq) or (batch, Dq); `coverage`, where supported, is the running
        sum of past weights, shaped like the weights. Returns (context, weights) with the
        query's leading shape.
        """
        single_step = len(query.shape) == 2
        if single_step:
            query = ops.expand_dims(query, 1)
            if coverage is not None:
                coverage = ops.expand_dims(coverage, 1)
        score = _recomputed_in_backward(self.score) if single_step and self.wide_score else self.score
        weights = masked_softmax(score(query, processed_key, coverage), value_mask)
        context = ops.matmul(weights, ops.cast(value, weights.dtype))
        if single_step:
            return ops.squeeze(context, 1), ops.squeeze(weights, 1)
        return context, weights

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        return mask[0]

    def compute_output_spec(self, inputs, mask=None, return_attention_scores=False, training=None):
        query, value, key = _unpack(inputs, self.name)
        context = keras.KerasTensor(tuple(query.shape[:-1]) + (value.shape[-1],), dtype=self.compute_dtype)
        if not return_attention_scores:
            return context
        weights_shape = tuple(query.shape[:-1]) + (key.shape[1],)
        return context, keras.KerasTensor(weights_shape, dtype=self.compute_dtype)

def _unpack(inputs, name):
    if not isinstance(inputs, (list, tuple)) or len(inputs) not in (2, 3):
        raise ValueError(
            f"Layer {name!r} expects inputs=[query, value] or [query, value, key]. "
            f"Received: {type(inputs).__name__} of length {len(inputs) if hasattr(inputs, '__len__') else 'n/a'}"
        )
    query, value = inputs[0], inputs[1]
    key = inputs[2] if len(inputs) == 3 else value
    return query, value, key


def _unpack_shapes(input_shape, name):
    if not isinstance(input_shape, (list, tuple)) or len(input_shape) not in (2, 3) or not all(
        isinstance(s, (list, tuple)) for s in input_shape
    ):
        raise ValueError(
            f"Layer {name!r} expects inputs=[query, value] or [query, value, key]. "
            f"Received input shape: {input_shape}"
        )
    query_shape, value_shape = list(input_shape[0]), list(input_shape[1])
    key_shape = list(input_shape[2]) if len(input_shape) == 3 else value_shape
    return query_shape, value_shape, key_shape
