"""Batched beam search (and greedy search, its width-1 case) as one compiled loop.

The whole search is a `keras.ops.while_loop`: the caller compiles it once (`tf.function` on
TensorFlow) and no Python runs per token. Options follow GNMT (Wu et al., 2016) and OpenNMT:
length penalty lp(Y) = ((5 + |Y|) / 6)^α, coverage penalty cp = β Σ_i log(min(Σ_t α_ti, 1)),
n-gram repeat blocking, and minimum / per-example maximum lengths.
"""

import keras
from keras import ops

NEG_INF = -1e9


def length_penalty(lengths, alpha):
    """GNMT length penalty ((5 + |Y|) / 6)^α; 1 when α = 0."""
    if alpha == 0:
        return ops.ones_like(ops.cast(lengths, "float32"))
    return ops.power((5.0 + ops.cast(lengths, "float32")) / 6.0, alpha)


def coverage_penalty(attention_sum, source_mask, beta):
    """GNMT coverage penalty β Σ_i log(min(Σ_t α_ti, 1)) over real source positions."""
    clipped = ops.log(ops.clip(attention_sum, 1e-10, 1.0))
    clipped = ops.where(ops.expand_dims(source_mask, 1), clipped, ops.zeros_like(clipped))
    return beta * ops.sum(clipped, axis=-1)


def _banned_ngrams(tokens, t, n, vocab_size):
    """(N, V) float mask of tokens that would repeat an n-gram already in each hypothesis.

    `tokens` (N, T+1) holds bos and the tokens generated so far in positions 0..t.
    """
    num, width = ops.shape(tokens)[0], tokens.shape[1]
    starts = width - n + 1  # n-gram start positions j = 0..starts-1
    windows = ops.stack([tokens[:, i : i + starts] for i in range(n)], axis=-1)  # (N, starts, n)
    if n > 1:
        prefix = ops.stack([ops.take(tokens, t - n + 2 + i, axis=1) for i in range(n - 1)], axis=-1)  # (N, n-1)
        same = ops.all(ops.equal(windows[..., : n - 1], ops.expand_dims(prefix, 1)), axis=-1)
    else:  # unigrams have no prefix: every token already generated is banned
        same = ops.ones_like(windows[..., 0], dtype="bool")
    seen = ops.arange(starts) + n - 1 <= t  # the n-gram ends at an already generated position
    match = ops.logical_and(same, ops.expand_dims(seen, 0))
    match = ops.logical_and(match, t >= n - 1)
    rows = ops.repeat(ops.expand_dims(ops.arange(num), 1), starts, axis=1)
    indices = ops.reshape(ops.stack([rows, windows[..., n - 1]], axis=-1), (-1, 2))
    counts = ops.scatter(indices, ops.reshape(ops.cast(match, "float32"), (-1,)), (num, vocab_size))
    return counts > 0


def beam_search(
    step_fn,
    state,
    source_mask,
    max_lengths,
    max_length,
    vocab_size,
    bos_id,
    eos_id,
    beam_size=1,
    alpha=0.0,
    beta=0.0,
    min_length=0,
    no_repeat_ngram_size=0,
):
    """Search the best output of every example of a batch.

    Args:
        step_fn: `step_fn(token_ids (N,), state) -> (logits (N, V), state, weights (N, Ts))`
            with N = batch * beam_size; the search normalises the logits with a log softmax
            (log probabilities pass through unchanged).
        state: nested dict of the decoder state, already tiled to N rows (each example's row
            repeated beam_size times in a row).
        source_mask: (batch, Ts) bool, True for real source tokens.
        max_lengths: (batch,) int32, the most tokens (eos included) each example may produce.
        max_length: Python int, the size of the output buffers (>= max(max_lengths)).
        vocab_size, bos_id, eos_id: the target vocabulary.
        beam_size: 1 for greedy search.
        alpha: length penalty α; beta: coverage penalty β.
        min_length: no eos before this many tokens.
        no_repeat_ngram_size: forbid repeating any n-gram of this size (0: off).

    Returns:
        dict with `token_ids` (batch, max_length) ending in eos (then eos padding), `lengths`
        (batch,) tokens before eos, `scores` (batch,) the normalised log probability (plus
        coverage penalty), `weights` (batch, max_length, Ts) the attention of the chosen output.
    """
    options = (alpha, beta, min_length, no_repeat_ngram_size)
    if beam_size == 1:
        return _greedy_search(step_fn, state, source_mask, max_lengths, max_length, vocab_size, bos_id, eos_id, *options)
    return _beam_search(
        step_fn, state, source_mask, max_lengths, max_length, vocab_size, bos_id, eos_id, beam_size, *options
    )


def _beam_search(
    step_fn, state, source_mask, max_lengths, max_length, vocab_size, bos_id, eos_id,
    beam_size, alpha, beta, min_length, no_repeat_ngram_size,
):
    """The beam: any width, 1 included (the tests compare that with `_greedy_search`)."""
    batch = ops.shape(source_mask)[0]
    source_length = ops.shape(source_mask)[1]
    k = beam_size
    num = batch * k
    eos_row = ops.expand_dims(ops.one_hot(eos_id, vocab_size) > 0, 0)  # (1, V)
    only_eos = ops.where(eos_row, 0.0, NEG_INF)  # log probs that allow eos alone
    positions = ops.arange(max_length + 1)

    tokens = ops.full((num, max_length + 1), eos_id, dtype="int32")
    tokens = ops.where(positions == 0, bos_id, tokens)
    first_beam = ops.arange(k) == 0
    log_probs = ops.tile(ops.expand_dims(ops.where(first_beam, 0.0, NEG_INF), 0), (batch, 1))
    finished = ops.zeros((batch, k), dtype="bool")
    lengths = ops.zeros((batch, k), dtype="int32")
    weights = ops.zeros((num, max_length, source_length), dtype="float32")
    weight_sum = ops.zeros((num, source_length), dtype="float32")
    limits = ops.reshape(ops.repeat(ops.expand_dims(max_lengths, 1), k, axis=1), (num, 1))

    def cond(t, tokens, log_probs, finished, lengths, weights, weight_sum, state):
        return ops.logical_and(t < max_length, ops.logical_not(ops.all(finished)))

    def body(t, tokens, log_probs, finished, lengths, weights, weight_sum, state):
        logits, new_state, step_weights = step_fn(ops.take(tokens, t, axis=1), state)
        step_log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
        step_weights = ops.cast(step_weights, "float32")
        if min_length > 0:
            step_log_probs = ops.where(ops.logical_and(eos_row, t < min_length), NEG_INF, step_log_probs)
        if no_repeat_ngram_size > 0:
            banned = _banned_ngrams(tokens, t, no_repeat_ngram_size, vocab_size)
            step_log_probs = ops.where(ops.logical_and(banned, ops.logical_not(eos_row)), NEG_INF, step_log_probs)
        # The last allowed position, and hypotheses that already ended, can only emit eos (free).
        must_end = ops.logical_or(t + 1 >= limits, ops.reshape(finished, (num, 1)))
        step_log_probs = ops.where(must_end, only_eos, step_log_probs)

        live = ops.logical_not(finished)
        new_lengths = lengths + ops.cast(live, "int32")
        candidates = ops.expand_dims(log_probs, -1) + ops.reshape(step_log_probs, (batch, k, vocab_size))
        ranked = candidates / ops.expand_dims(length_penalty(new_lengths, alpha), -1)
        _, best = ops.top_k(ops.reshape(ranked, (batch, k * vocab_size)), k)
        beam = best // vocab_size
        token = ops.cast(best % vocab_size, "int32")
        flat = ops.reshape(beam + ops.expand_dims(ops.arange(batch) * k, 1), (num,))

        log_probs = ops.take_along_axis(ops.reshape(candidates, (batch, k * vocab_size)), best, axis=1)
        was_finished = ops.take_along_axis(finished, beam, axis=1)
        finished = ops.logical_or(was_finished, token == eos_id)
        lengths = ops.take_along_axis(new_lengths, beam, axis=1)
        tokens = ops.take(tokens, flat, axis=0)
        tokens = ops.where(positions == t + 1, ops.reshape(token, (num, 1)), tokens)
        kept = ops.reshape(ops.logical_not(was_finished), (num, 1))
        step_weights = ops.where(kept, ops.take(step_weights, flat, axis=0), 0.0)
        weights = ops.take(weights, flat, axis=0)
        weights = ops.where(ops.reshape(positions[:-1] == t, (1, max_length, 1)), ops.expand_dims(step_weights, 1), weights)
        weight_sum = ops.take(weight_sum, flat, axis=0) + step_weights
        state = _take_rows(new_state, flat)
        return t + 1, tokens, log_probs, finished, lengths, weights, weight_sum, state

    loop = ops.while_loop(
        cond,
        body,
        (ops.convert_to_tensor(0, "int32"), tokens, log_probs, finished, lengths, weights, weight_sum, state),
    )
    _, tokens, log_probs, finished, lengths, weights, weight_sum, _ = loop

    scores = log_probs / length_penalty(lengths, alpha)
    if beta > 0:
        scores = scores + ops.reshape(
            coverage_penalty(ops.reshape(weight_sum, (batch, k, source_length)), source_mask, beta), (batch, k)
        )
    choice = ops.argmax(scores, axis=1)
    rows = ops.arange(batch) * k + ops.cast(choice, "int32")
    output_lengths = ops.take_along_axis(lengths, ops.expand_dims(choice, 1), axis=1)[:, 0]
    ended = ops.take_along_axis(finished, ops.expand_dims(choice, 1), axis=1)[:, 0]
    return {
        "token_ids": ops.take(tokens, rows, axis=0)[:, 1:],
        # Lengths count the eos token; the reported length is the text's.
        "lengths": output_lengths - ops.cast(ended, "int32"),
        "scores": ops.take_along_axis(scores, ops.expand_dims(choice, 1), axis=1)[:, 0],
        "weights": ops.take(weights, rows, axis=0),
    }


def _greedy_search(
    step_fn, state, source_mask, max_lengths, max_length, vocab_size, bos_id, eos_id,
    alpha, beta, min_length, no_repeat_ngram_size,
):
    """`beam_search` with beam_size=1, without what a beam needs.

    Same outputs (tested against the width-1 beam), less work per token: the first maximum of
    the logits instead of a log softmax and a top-k, the log probability of the chosen token alone
    (its logit minus the log-sum-exp), and no reordering of hypotheses, state or buffers.
    """
    batch = ops.shape(source_mask)[0]
    source_length = ops.shape(source_mask)[1]
    vocab_ids = ops.expand_dims(ops.arange(vocab_size, dtype="int32"), 0)  # (1, V)
    eos_row = vocab_ids == eos_id
    positions = ops.arange(max_length + 1)

    tokens = ops.where(ops.expand_dims(positions == 0, 0), bos_id, ops.full((batch, max_length + 1), eos_id, "int32"))
    log_probs = ops.zeros((batch,), dtype="float32")
    finished = ops.zeros((batch,), dtype="bool")
    lengths = ops.zeros((batch,), dtype="int32")
    weights = _new_step_buffer(batch, max_length, source_length)
    weight_sum = ops.zeros((batch, source_length), dtype="float32")

    def cond(t, tokens, log_probs, finished, lengths, weights, weight_sum, state):
        # The first step always runs (an empty batch too): the step buffer then has a shape.
        return ops.logical_and(t < max_length, ops.logical_or(t == 0, ops.logical_not(ops.all(finished))))

    def body(t, tokens, log_probs, finished, lengths, weights, weight_sum, state):
        logits, state, step_weights = step_fn(ops.take(tokens, t, axis=1), state)
        logits = ops.cast(logits, "float32")
        step_weights = ops.cast(step_weights, "float32")
        allowed = logits
        if min_length > 0:
            allowed = ops.where(ops.logical_and(eos_row, t < min_length), NEG_INF, allowed)
        if no_repeat_ngram_size > 0:
            banned = _banned_ngrams(tokens, t, no_repeat_ngram_size, vocab_size)
            allowed = ops.where(ops.logical_and(banned, ops.logical_not(eos_row)), NEG_INF, allowed)
        # The last allowed position, and outputs that already ended, can only emit eos (free).
        must_end = ops.logical_or(t + 1 >= max_lengths, finished)
        # argmax as "the first position of the maximum": the maximum is also the chosen token's
        # logit, and the reductions fuse under XLA (a variadic argmax reduction does not).
        best = ops.max(allowed, axis=-1, keepdims=True)
        first = ops.min(ops.where(allowed == best, vocab_ids, vocab_size), axis=-1)
        token = ops.where(must_end, eos_id, ops.cast(first, "int32"))
        token_log_prob = ops.squeeze(best, 1) - ops.logsumexp(logits, axis=-1)
        live = ops.logical_not(finished)
        log_probs = log_probs + ops.where(must_end, 0.0, token_log_prob)
        lengths = lengths + ops.cast(live, "int32")
        finished = ops.logical_or(finished, token == eos_id)
        tokens = ops.where(ops.expand_dims(positions == t + 1, 0), ops.expand_dims(token, 1), tokens)
        step_weights = ops.where(ops.expand_dims(live, 1), step_weights, 0.0)
        weights = _write_step(weights, t, step_weights)
        weight_sum = weight_sum + step_weights
        return t + 1, tokens, log_probs, finished, lengths, weights, weight_sum, state

    loop = ops.while_loop(
        cond,
        body,
        (ops.convert_to_tensor(0, "int32"), tokens, log_probs, finished, lengths, weights, weight_sum, state),
        maximum_iterations=max_length,
    )
    _, tokens, log_probs, finished, lengths, weights, weight_sum, _ = loop
    scores = log_probs / length_penalty(lengths, alpha)
    if beta > 0:
        scores = scores + coverage_penalty(ops.expand_dims(weight_sum, 1), source_mask, beta)[:, 0]
    return {
        "token_ids": tokens[:, 1:],
        "lengths": lengths - ops.cast(finished, "int32"),
        "scores": scores,
        "weights": _stack_steps(weights),
    }


# Per-step outputs of the greedy loop. A full (batch, max_length, Ts) buffer updated with `where`
# costs a pass over the whole buffer per token (measured: about 15% of a greedy step of the
# bible_en_es_bahdanau model on CPU); TensorFlow's TensorArray writes one slice (steps never
# written stack as zeros, with and without XLA), and on the other backends `slice_update` becomes
# XLA's in-place dynamic-update-slice.
def _new_step_buffer(batch, max_length, width):
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.TensorArray(tf.float32, size=max_length, element_shape=(None, None))
    return ops.zeros((batch, max_length, width), dtype="float32")


def _write_step(buffer, t, value):
    if keras.backend.backend() == "tensorflow":
        return buffer.write(t, value)
    return ops.slice_update(buffer, (0, t, 0), ops.expand_dims(value, 1))


def _stack_steps(buffer):
    """(batch, max_length, width) from the step buffer."""
    if keras.backend.backend() != "tensorflow":
        return buffer
    return ops.transpose(buffer.stack(), (1, 0, 2))


def _take_rows(state, rows):
    if isinstance(state, dict):
        return {key: _take_rows(value, rows) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_take_rows(value, rows) for value in state)
    return ops.take(state, rows, axis=0)


def tile_rows(structure, times):
    """Repeat every row of every tensor `times` times in a row (batch -> batch * beam)."""
    if isinstance(structure, dict):
        return {key: tile_rows(value, times) for key, value in structure.items()}
    if isinstance(structure, (list, tuple)):
        return type(structure)(tile_rows(value, times) for value in structure)
    if structure is None or times == 1:
        return structure
    return ops.repeat(structure, times, axis=0)
