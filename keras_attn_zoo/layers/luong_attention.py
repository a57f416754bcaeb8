import keras
from keras import ops

from keras_attn_zoo.layers.base_attention import BaseAttention, additive_score, project

SCORE_MODES = ("dot", "general", "concat", "cosine")


@keras.saving.register_keras_serializable(package="keras_attn_zoo")
class LuongAttention(BaseAttention):
    """Multiplicative (Luong) attention with the dot, general, concat and cosine scores.

    - `"dot"`:     score(q, k) = qᵀ k
    - `"general"`: score(q, k) = qᵀ W_a k
    - `"concat"`:  score(q, k) = v_aᵀ tanh(W_a [q; k]), W_a of `units` rows
    - `"cosine"`:  score(q, k) = qᵀ k / (‖q‖ ‖k‖)

    Every score is multiplied by a scalar g: learned with `scale=True` (initialised to
    `scale_init`; what `tfa.seq2seq.LuongAttention(scale=True)` did, from 1), fixed at `scale_init`
    otherwise. Cosine scores lie in [-1, 1], so unscaled they cannot focus: over 40 source tokens no
    token could get more than e / (e + 39 / e) ≈ 0.16 of the weight. Cosine attention therefore
    learns g from 10 by default (a temperature of 0.1; Luong et al. do not use cosine, and 10 is
    a choice of this library). α = softmax(g · score) over unmasked memory and the context is
    Σ_j α_j v_j. The part of the score that does not depend on the query (W_a k, the key
    half of the concat layer, the normalised keys) is computed once per source by `process_key`.

    Args:
        score_mode: one of "dot", "general", "concat", "cosine".
        units: hidden size of the "concat" scoring layer; default the key size. Only for "concat".
        scale: learn the scalar multiplier of the scores. Default (None): True for "cosine",
            False otherwise.
        scale_init: the multiplier's initial value when learned, its value when fixed. Default
            (None): 10 for "cosine", 1 otherwise.
        kernel_initializer: initializer of W_a (and v_a).
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `[query, value]` or `[query, value, key]`; query (batch, Tq, Dq) or one decoder
            step (batch, Dq); value (batch, Tv, Dv); key (batch, Tv, Dk), default value.
        mask: optional `[query_mask, value_mask]`, True where a position is real.
        return_attention_scores: also return the weights.

    Example:

    >>> import numpy as np, keras
    >>> state = keras.Input((16,)); memory = keras.Input((9, 16))
    >>> context = LuongAttention("general")([state, memory])
    >>> keras.Model([state, memory], context).predict(
    ...     [np.ones((2, 16)), np.ones((2, 9, 16))], verbose=0).shape
    (2, 16)

    Reference: Luong, Pham & Manning, "Effective Approaches to Attention-based Neural Machine
    Translation", EMNLP 2015.
    """

    def __init__(
        self, score_mode="dot", units=None, scale=None, scale_init=None, kernel_initializer="glorot_uniform", **kwargs
    ):
        super().__init__(**kwargs)
        if score_mode not in SCORE_MODES:
            raise ValueError(
                f"Received: score_mode={score_mode!r}; expected one of " + ", ".join(repr(m) for m in SCORE_MODES)
            )
        if units is not None and score_mode != "concat":
            raise ValueError(f"Received: units={units!r} with score_mode={score_mode!r}; units is only used by 'concat'.")
        if units is not None and (not isinstance(units, int) or units <= 0):
            raise ValueError(f"Received: units={units!r}; expected a positive integer or None.")
        if scale_init is not None and (isinstance(scale_init, bool) or not isinstance(scale_init, (int, float))):
            raise ValueError(f"Received: scale_init={scale_init!r}; expected a number or None.")
        self.score_mode = score_mode
        self.units = units
        self.scale = scale
        self.scale_init = scale_init
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build_score(self, query_dim, key_dim):
        if self.score_mode in ("dot", "cosine") and query_dim != key_dim:
            raise ValueError(
                f"Layer {self.name!r}: score_mode={self.score_mode!r} needs query and key of the same "
                f"size. Received: query dim={query_dim}, key dim={key_dim}; use 'general' or 'concat' "
                "to compare vectors of different sizes."
            )
        init = self.kernel_initializer
        if self.score_mode == "general":
            self.kernel = self.add_weight(name="kernel", shape=(key_dim, query_dim), initializer=init)
        elif self.score_mode == "concat":
            units = self.units or key_dim
            self.query_kernel = self.add_weight(name="query_kernel", shape=(query_dim, units), initializer=init)
            self.key_kernel = self.add_weight(name="key_kernel", shape=(key_dim, units), initializer=init)
            self.score_vector = self.add_weight(name="score_vector", shape=(units,), initializer=init)
        if self._learned_scale:
            self.score_scale = self.add_weight(
                name="score_scale", shape=(), initializer=keras.initializers.Constant(self._scale_value)
            )

    @property
    def _learned_scale(self):
        return self.score_mode == "cosine" if self.scale is None else bool(self.scale)

    @property
    def _scale_value(self):
        if self.scale_init is not None:
            return float(self.scale_init)
        return 10.0 if self.score_mode == "cosine" else 1.0

    @property
    def wide_score(self):
        return self.score_mode == "concat"  # the (batch, Tq, Tv, units) tanh of the concat score

    def process_key(self, key):
        if self.score_mode == "general":
            return project(key, self.kernel)
        if self.score_mode == "concat":
            return project(key, self.key_kernel)
        if self.score_mode == "cosine":
            return _unit(key)
        return key

    def score(self, query, processed_key, coverage=None):
        if coverage is not None:
            raise ValueError(
                f"Layer {self.name!r}: coverage is only supported by BahdanauAttention(use_coverage=True). "
                f"Received: coverage with score_mode={self.score_mode!r}"
            )
        if self.score_mode == "concat":
            features = ops.expand_dims(project(query, self.query_kernel), 2) + ops.expand_dims(processed_key, 1)
            scores = additive_score(features, self.score_vector)
        else:
            if self.score_mode == "cosine":
                query = _unit(query)
            scores = ops.matmul(query, ops.transpose(processed_key, (0, 2, 1)))
        if self._learned_scale:
            scores = scores * ops.cast(self.score_scale, scores.dtype)
        elif self._scale_value != 1.0:
            scores = scores * ops.cast(self._scale_value, scores.dtype)
        return scores

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "score_mode": self.score_mode,
                "units": self.units,
                "scale": self.scale,
                "scale_init": self.scale_init,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config


def _unit(x, epsilon=1e-6):
    """x / max(‖x‖, ε) along the last axis; a zero vector stays zero, and so does its gradient.

    Written as x · rsqrt(max(Σx², ε²)) rather than x / max(sqrt(Σx²), ε): the gradient of sqrt at 0
    is infinite, and infinity times the zero gradient of `maximum` is NaN (on JAX, and on
    TensorFlow under XLA), while padded memory of a masked RNN is exactly zero. The sum runs in
    float32, where ε² = 1e-12 does not underflow.
    """
    squared = ops.sum(ops.square(ops.cast(x, "float32")), axis=-1, keepdims=True)
    return x * ops.cast(ops.rsqrt(ops.maximum(squared, epsilon**2)), x.dtype)
