import keras
from keras import ops

@keras.saving.register_keras_serializable(package="keras_attn_zoo")
class PointerGenerator(keras.layers.Layer):
    """The copy switch of a pointer-generator: generate from the vocabulary or copy a source token.

    At each decoder step t (See, Liu & Manning, 2017, eq. 8-9):

        p_gen = σ(w_c·c_t + w_s·s_t + w_x·x_t + b)
        P(w)  = p_gen · P_vocab(w) + (1 − p_gen) · Σ_{i: source_i = w} a_i^t

    with c_t the attention context, s_t the decoder state, x_t the decoder input and a^t the
    attention weights over the source. Source and output share one vocabulary, so the attention
    is scattered straight onto the source token ids (no extended vocabulary is needed with
    subword pieces, which have no out-of-vocabulary words).

    The output is log P, computed in log space: log p_gen and log(1 − p_gen) are log-sigmoids,
    log P_vocab a log-softmax, and the two branches meet in a logaddexp, so a token the
    vocabulary gives e^-200 keeps log P = log p_gen − 200 (a floor such as log(P + 1e-10) would
    cap every loss near 23 and stop its gradient). The copy branch is −inf for ids outside the
    source, with a zero gradient there: no NaN, no floor. Since log P is normalised, it stands
    in for logits: `SparseCategoricalCrossentropy(from_logits=True)` on it is exactly −log P(y),
    and a search that applies log-softmax leaves it unchanged.

    Works on whole sequences (training: `(batch, T, ...)` inputs) and on one step (search:
    `(batch, ...)`), and knows nothing of tasks.

    Args:
        vocab_size: size of the shared vocabulary.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        logits: vocabulary logits (batch, [T,] V).
        weights: attention weights over the source (batch, [T,] Ts).
        source_ids: the source token ids (batch, Ts), in the same vocabulary.
        context, state, inputs: c_t (batch, [T,] D), s_t (batch, [T,] S), x_t (batch, [T,] E).
        return_gate: also return p_gen (batch, [T]).

    Example:

    >>> import numpy as np
    >>> layer = PointerGenerator(6)
    >>> log_p = layer(np.zeros((1, 6)), np.array([[0.75, 0.25]]), np.array([[4, 5]]),
    ...               np.ones((1, 3)), np.ones((1, 2)), np.ones((1, 2)))
    >>> round(float(np.exp(log_p).sum()), 4)
    1.0

    Reference: See, Liu & Manning, "Get To The Point: Summarization with Pointer-Generator
    Networks", ACL 2017.
    """

    def __init__(self, vocab_size, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(vocab_size, int) or vocab_size < 1:
            raise ValueError(f"Received: vocab_size={vocab_size!r}; expected a positive integer.")
        self.vocab_size = vocab_size
        self.gate = keras.layers.Dense(1, name="gate")

    def build(self, logits_shape, weights_shape=None, source_ids_shape=None, context_shape=None,
              state_shape=None, inputs_shape=None):
        dims = [shape[-1] for shape in (context_shape, state_shape, inputs_shape) if shape is not None]
        if len(dims) != 3 or any(d is None for d in dims):
            raise ValueError(
                f"Layer {self.name!r} needs the last sizes of context, state and inputs. Received: "
                f"context shape={context_shape}, state shape={state_shape}, inputs shape={inputs_shape}"
            )
        self.gate.build((None, sum(dims)))
        self.built = True

    def gate_logit(self, context, state, inputs):
        """w_c·c + w_s·s + w_x·x + b: one Dense over the joined features."""
        features = ops.concatenate([ops.cast(x, self.compute_dtype) for x in (context, state, inputs)], -1)
        return ops.cast(ops.squeeze(self.gate(features), -1), "float32")

    def copy_distribution(self, weights, source_ids):
        """Σ_{i: source_i = w} a_i for every vocabulary id w: (batch, [T,] Ts) -> (batch, [T,] V).

        A scatter-add (ids repeated in the source add up); its gradient is a gather, so training
        never builds a (batch, Ts, V) one-hot.
        """
        weights = ops.cast(weights, "float32")
        source_ids = ops.cast(source_ids, "int32")
        batch = ops.shape(weights)[0]
        source_length = ops.shape(weights)[-1]
        if len(weights.shape) == 2:
            rows = ops.repeat(ops.expand_dims(ops.arange(batch, dtype="int32"), 1), source_length, axis=1)
            indices = ops.stack([rows, source_ids], -1)
            shape = (batch, self.vocab_size)
        else:
            steps = ops.shape(weights)[1]
            rows = ops.broadcast_to(ops.reshape(ops.arange(batch, dtype="int32"), (-1, 1, 1)), ops.shape(weights))
            cols = ops.broadcast_to(ops.reshape(ops.arange(steps, dtype="int32"), (1, -1, 1)), ops.shape(weights))
            ids = ops.broadcast_to(ops.expand_dims(source_ids, 1), ops.shape(weights))
            indices = ops.stack([rows, cols, ids], -1)
            shape = (batch, steps, self.vocab_size)
        return ops.scatter(ops.reshape(indices, (-1, indices.shape[-1])), ops.reshape(weights, (-1,)), shape)

    def call(self, logits, weights, source_ids, context, state, inputs, return_gate=False):
        gate = self.gate_logit(context, state, inputs)
        log_generate = ops.expand_dims(ops.log_sigmoid(gate), -1)
        log_copy = ops.expand_dims(ops.log_sigmoid(-gate), -1)
        vocab = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
        copy = self.copy_distribution(weights, source_ids)
        present = copy > 0.0
        # log of the copy mass where there is some, -inf elsewhere; the inner `where` keeps the
        # gradient of the masked entries at 0 (a plain log(0) would send inf * 0 = NaN back).
        copied = ops.where(present, ops.log(ops.where(present, copy, 1.0)), float("-inf"))
        log_probs = ops.logaddexp(log_generate + vocab, log_copy + copied)
        if return_gate:
            return log_probs, ops.sigmoid(gate)
        return log_probs

    def compute_mask(self, inputs, previous_mask=None):
        # Keras passes the mask of the first argument (the logits, which carry the target mask):
        # log P keeps it, so the loss skips padded target steps.
        return previous_mask

    def compute_output_spec(self, logits, weights, source_ids, context, state, inputs, return_gate=False):
        log_probs = keras.KerasTensor(logits.shape[:-1] + (self.vocab_size,), dtype="float32")
        if return_gate:
            return log_probs, keras.KerasTensor(logits.shape[:-1], dtype="float32")
        return log_probs

    def get_config(self):
        config = super().get_config()
        config.update({"vocab_size": self.vocab_size})
        return config
