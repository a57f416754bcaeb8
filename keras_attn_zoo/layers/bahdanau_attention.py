import math

import keras
from keras import ops

from keras_attn_zoo.layers.base_attention import BaseAttention, additive_score, project


@keras.saving.register_keras_serializable(package="keras_attn_zoo")
class BahdanauAttention(BaseAttention):
    """Additive attention with learned query and key projections.

    score(q, k_j) = vᵀ tanh(W_q q + W_k k_j)

    α = softmax(score) over unmasked memory, and the context is Σ_j α_j v_j. With
    `normalize=True` the score uses the weight-normalised form of Salimans & Kingma (2016),
    g · v / ‖v‖ with a bias b inside the tanh, as `tfa.seq2seq.BahdanauAttention(normalize=True)`
    did. With `use_coverage=True` the score also sees the running sum of past attention weights,
    vᵀ tanh(W_q q + W_k k_j + w_c cov_j) (See et al., 2017); pass it as `coverage` to `attend`.

    `W_k k` does not depend on the query: `process_key` computes it once per source, and decoder
    loops (see `AttentionDecoder`) reuse it at every step.

    Args:
        units: size of the hidden layer of the scoring network.
        normalize: use the weight-normalised score.
        use_coverage: add a coverage feature to the score.
        kernel_initializer: initializer of W_q, W_k and v (w_c starts at zero).
        **kwargs: standard `keras.layers.Layer` arguments (name, dtype, ...).

    Call arguments:
        inputs: `[query, value]` or `[query, value, key]`; query (batch, Tq, Dq) or a single
            decoder step (batch, Dq); value (batch, Tv, Dv); key (batch, Tv, Dk), default value.
        mask: optional `[query_mask, value_mask]`, True where a position is real.
        return_attention_scores: also return the weights, (batch, Tq, Tv) or (batch, Tv).

    Example:

    >>> import numpy as np, keras
    >>> query = keras.Input((7, 16)); memory = keras.Input((9, 32))
    >>> context, weights = BahdanauAttention(8)([query, memory], return_attention_scores=True)
    >>> model = keras.Model([query, memory], [context, weights])
    >>> c, w = model.predict([np.ones((2, 7, 16)), np.ones((2, 9, 32))], verbose=0)
    >>> c.shape, w.shape
    ((2, 7, 32), (2, 7, 9))

    Reference: Bahdanau, Cho & Bengio, "Neural Machine Translation by Jointly Learning to Align
    and Translate", ICLR 2015.
    """

    wide_score = True  # the (batch, Tq, Tv, units) sum and its tanh

    def __init__(
        self,
        units,
        normalize=False,
        use_coverage=False,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units <= 0:
            raise ValueError(f"Received: units={units!r}; expected a positive integer.")
        self.units = units
        self.normalize = normalize
        self.use_coverage = use_coverage
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build_score(self, query_dim, key_dim):
        init = self.kernel_initializer
        self.query_kernel = self.add_weight(name="query_kernel", shape=(query_dim, self.units), initializer=init)
        self.key_kernel = self.add_weight(name="key_kernel", shape=(key_dim, self.units), initializer=init)
        self.score_vector = self.add_weight(name="score_vector", shape=(self.units,), initializer=init)
        if self.normalize:
            self.score_gain = self.add_weight(
                name="score_gain", shape=(), initializer=keras.initializers.Constant(math.sqrt(1.0 / self.units))
            )
            self.score_bias = self.add_weight(name="score_bias", shape=(self.units,), initializer="zeros")
        if self.use_coverage:
            # Zeros: the score starts as plain attention, so coverage can be switched on for a
            # fine-tune of a model trained without it (See et al.'s schedule) without a jump.
            self.coverage_kernel = self.add_weight(name="coverage_kernel", shape=(self.units,), initializer="zeros")

    def process_key(self, key):
        return project(key, self.key_kernel)

    def score(self, query, processed_key, coverage=None):
        # (B, Tq, 1, U) + (B, 1, Tv, U) -> (B, Tq, Tv, U)
        features = ops.expand_dims(project(query, self.query_kernel), 2) + ops.expand_dims(processed_key, 1)
        if self.use_coverage:
            if coverage is None:
                raise ValueError(
                    f"Layer {self.name!r} was built with use_coverage=True and needs `coverage`, "
                    "the running sum of past attention weights. Received: coverage=None"
                )
            features = features + ops.expand_dims(ops.cast(coverage, features.dtype), -1) * self.coverage_kernel
        v = self.score_vector
        if self.normalize:
            features = features + self.score_bias
            v = self.score_gain * v / ops.sqrt(ops.sum(ops.square(v)))
        return additive_score(features, v)

    def call(self, inputs, mask=None, return_attention_scores=False, training=None):
        if self.use_coverage:
            raise ValueError(
                f"Layer {self.name!r} has use_coverage=True: coverage is a running sum over decoder "
                "steps, so call it through AttentionDecoder(coverage=True) or `attend(..., coverage=)`."
            )
        return super().call(inputs, mask=mask, return_attention_scores=return_attention_scores, training=training)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "normalize": self.normalize,
                "use_coverage": self.use_coverage,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
