"""Batched beam search (and greedy search, its width-1 case) as one compiled loop.

The whole search is a `keras.ops.while_loop`: the caller compiles it once (`tf.function` on
TensorFlow) and no Python runs per token. Options follow GNMT (Wu et al., 2016) and OpenNMT:
length penalty lp(Y) = ((5 + |Y|) / 6)^α, coverage penalty
cp = β Σ_i log(max(min(Σ_t α_ti, 1), 0.1)), n-gram repeat blocking, banned tokens, and
minimum / per-example maximum lengths.
"""

import keras
from keras import ops

NEG_INF = -1e9
# GNMT's coverage penalty has log(min(c, 1)), which tends to -inf as a source token's coverage c
# tends to 0 (softmax weights are never exactly 0, so it is finite but can be -23 for c = 1e-10):
# one unread token would then outweigh the log probability of a whole output. Coverage below
# this floor counts as "not read" and costs β log(10) ≈ 2.3 β per source token, at most.
COVERAGE_FLOOR = 0.1


def length_penalty(lengths, alpha):
    """GNMT length penalty ((5 + |Y|) / 6)^α; 1 when α = 0."""
    if alpha == 0:
        return ops.ones_like(ops.cast(lengths, "float32"))
    return ops.power((5.0 + ops.cast(lengths, "float32")) / 6.0, alpha)


def coverage_penalty(attention_sum, source_mask, beta):
    """GNMT coverage penalty β Σ_i log(min(Σ_t α_ti, 1)) over real source positions.

    Coverage is floored at `COVERAGE_FLOOR`, so the penalty lies in
    [β · Ts · log(COVERAGE_FLOOR), 0] and one unread token costs at most β log(1 / COVERAGE_FLOOR).
    """
    clipped = ops.log(ops.clip(attention_sum, COVERAGE_FLOOR, 1.0))
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
    banned_ids=(),
    stepwise_coverage=False,
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
        vocab_size, bos_id, eos_id: the target vocabulary. bos is never generated.
        beam_size: 1 for greedy search.
        alpha: length penalty α; beta: coverage penalty β.
        min_length: no eos before this many tokens.
        no_repeat_ngram_size: forbid repeating any n-gram of this size (0: off).
        banned_ids: other token ids that are never generated (padding, and unk on request).
        stepwise_coverage: also rank the live hypotheses by the coverage penalty of their
            attention so far while pruning (OpenNMT's `stepwise_penalty`), not only the
            finished ones. Beam search only.

    Returns:
        dict with `token_ids` (batch, max_length): the output, then eos and eos padding;
        `lengths` (batch,) the tokens before eos; `scores` (batch,) the normalised log
        probability plus the coverage penalty; `weights` (batch, max_length, Ts) the attention of
        the chosen output, the eos step included; `truncated` (batch,) bool, True where the
        output stopped at its length limit rather than with an eos the model chose (the eos at
        the limit is forced, and free).
    """
    options = (alpha, beta, min_length, no_repeat_ngram_size, (bos_id,) + tuple(banned_ids))
    if beam_size == 1:
        return _greedy_search(step_fn, state, source_mask, max_lengths, max_length, vocab_size, bos_id, eos_id, *options)
    return _beam_search(
        step_fn, state, source_mask, max_lengths, max_length, vocab_size, bos_id, eos_id, beam_size, *options,
        stepwise_coverage=stepwise_coverage,
    )


def _allowed_log_probs(log_probs, tokens, t, eos_row, banned_row, min_length, no_repeat_ngram_size, vocab_size):
    """`log_probs` (N, V) with what may not come next set to NEG_INF (the step's constraints)."""
    log_probs = ops.where(banned_row, NEG_INF, log_probs)
    if min_length > 0:
        log_probs = ops.where(ops.logical_and(eos_row, t < min_length), NEG_INF, log_probs)
    if no_repeat_ngram_size > 0:
        banned = _banned_ngrams(tokens, t, no_repeat_ngram_size, vocab_size)
        log_probs = ops.where(ops.logical_and(banned, ops.logical_not(eos_row)), NEG_INF, log_probs)
    return log_probs


def _beam_search(
    step_fn, state, source_mask, max_lengths, max_length, vocab_size, bos_id, eos_id,
    beam_size, alpha, beta, min_length, no_repeat_ngram_size, banned_ids, stepwise_coverage=False,
):
    """The beam, with the hypotheses it finished kept apart from the live ones.

    Every step extends each of the k live hypotheses by every token. The eos extensions are
    finished hypotheses: they join a pool of the best k finished ones of their example (scored
    with the length and coverage penalties). The k best other extensions become the next live
    beam, so the beam always carries k hypotheses that can still grow; a finished hypothesis is
    never pushed out by live prefixes that later decay (fairseq, OpenNMT-py and Hugging Face do
    the same). An example stops when no live hypothesis can beat the worst of a full pool: a
    live log probability only falls, so its best final score is at most
    log P / lp(the example's length limit) (coverage penalties are <= 0), or at its limit.
    """
    batch = ops.shape(source_mask)[0]
    source_length = ops.shape(source_mask)[1]
    k = beam_size
    num = batch * k
    vocab_ids = ops.expand_dims(ops.arange(vocab_size, dtype="int32"), 0)  # (1, V)
    eos_row = vocab_ids == eos_id
    banned_row = _any_of(vocab_ids, banned_ids)
    positions = ops.arange(max_length + 1)
    example_rows = ops.expand_dims(ops.arange(batch) * k, 1)  # (batch, 1)
    limits = ops.cast(max_lengths, "int32")
    row_limits = ops.reshape(ops.repeat(ops.expand_dims(limits, 1), k, axis=1), (num, 1))
    # The best final score a live hypothesis can reach is log P / lp(limit).
    best_penalty = ops.expand_dims(length_penalty(limits, alpha), 1)  # (batch, 1)

    tokens = ops.full((num, max_length + 1), eos_id, dtype="int32")
    tokens = ops.where(positions == 0, bos_id, tokens)
    # Beam rows 1..k-1 start dead, so the first step expands beam 0 alone.
    log_probs = ops.tile(ops.expand_dims(ops.where(ops.arange(k) == 0, 0.0, NEG_INF), 0), (batch, 1))
    weights = ops.zeros((num, max_length, source_length), dtype="float32")
    weight_sum = ops.zeros((num, source_length), dtype="float32")
    pool = {
        "tokens": tokens,
        "scores": ops.full((batch, k), -float("inf"), dtype="float32"),
        "lengths": ops.zeros((batch, k), dtype="int32"),
        "truncated": ops.zeros((batch, k), dtype="bool"),
        "weights": weights,
    }
    done = ops.zeros((batch,), dtype="bool")

    def cond(t, tokens, log_probs, weights, weight_sum, pool, done, state):
        return ops.logical_and(t < max_length, ops.logical_not(ops.all(done)))

    def body(t, tokens, log_probs, weights, weight_sum, pool, done, state):
        logits, new_state, step_weights = step_fn(ops.take(tokens, t, axis=1), state)
        step_log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
        step_log_probs = _allowed_log_probs(
            step_log_probs, tokens, t, eos_row, banned_row, min_length, no_repeat_ngram_size, vocab_size
        )
        step_weights = ops.cast(step_weights, "float32")
        at_limit = t + 1 >= row_limits  # (num, 1): the last position, where only the free eos is left
        new_sum = weight_sum + step_weights
        penalty = length_penalty(t + 1, alpha)
        coverage = 0.0
        if beta > 0:
            coverage = ops.reshape(
                coverage_penalty(ops.reshape(new_sum, (batch, k, source_length)), source_mask, beta), (batch, k)
            )

        # Finished: every live hypothesis followed by eos.
        eos_log_probs = ops.where(at_limit[:, 0], 0.0, ops.take(step_log_probs, eos_id, axis=1))
        finished_scores = (log_probs + ops.reshape(eos_log_probs, (batch, k))) / penalty + coverage
        finished_weights = ops.where(ops.reshape(positions[:-1] == t, (1, max_length, 1)), ops.expand_dims(step_weights, 1), weights)
        finished = {
            "tokens": tokens,  # positions after t already hold eos
            "scores": finished_scores,
            "lengths": ops.full((batch, k), t, dtype="int32"),
            "truncated": ops.reshape(at_limit, (batch, k)),
            "weights": finished_weights,
        }
        pool = _merge_pools(pool, finished, done, k)

        # Live: the k best extensions by any other token.
        live_log_probs = ops.where(ops.logical_or(eos_row, at_limit), NEG_INF, step_log_probs)
        candidates = ops.expand_dims(log_probs, -1) + ops.reshape(live_log_probs, (batch, k, vocab_size))
        ranked = candidates
        if stepwise_coverage and beta > 0:
            ranked = candidates / penalty + ops.expand_dims(coverage, -1)
        _, best = ops.top_k(ops.reshape(ranked, (batch, k * vocab_size)), k)
        flat = ops.reshape(best // vocab_size + example_rows, (num,))
        token = ops.reshape(ops.cast(best % vocab_size, "int32"), (num, 1))
        log_probs = ops.take_along_axis(ops.reshape(candidates, (batch, k * vocab_size)), best, axis=1)
        tokens = ops.where(positions == t + 1, token, ops.take(tokens, flat, axis=0))
        weights = ops.take(finished_weights, flat, axis=0)
        weight_sum = ops.take(new_sum, flat, axis=0)
        state = _take_rows(new_state, flat)

        worst = ops.min(pool["scores"], axis=1)
        reachable = ops.max(log_probs, axis=1) / best_penalty[:, 0]
        done = ops.logical_or(done, ops.logical_or(reachable < worst, t + 1 >= limits))
        return t + 1, tokens, log_probs, weights, weight_sum, pool, done, state

    loop = ops.while_loop(
        cond,
        body,
        (ops.convert_to_tensor(0, "int32"), tokens, log_probs, weights, weight_sum, pool, done, state),
        maximum_iterations=max_length,
    )
    pool = loop[5]
    choice = ops.cast(ops.argmax(pool["scores"], axis=1), "int32")
    rows = ops.arange(batch) * k + choice

    def chosen(values):
        return ops.take_along_axis(values, ops.expand_dims(choice, 1), axis=1)[:, 0]

    return {
        "token_ids": ops.take(pool["tokens"], rows, axis=0)[:, 1:],
        "lengths": chosen(pool["lengths"]),
        "scores": chosen(pool["scores"]),
        "weights": ops.take(pool["weights"], rows, axis=0),
        "truncated": chosen(pool["truncated"]),
    }


def _merge_pools(pool, finished, done, k):
    """Each example's best k of its pool and its newly finished hypotheses (the pool first on ties).

    Examples already done keep their pool as it is. The merge (which moves the attention
    history of the pooled hypotheses) runs only on steps where some new hypothesis gets in.
    """
    batch = ops.shape(done)[0]
    scores = ops.where(ops.expand_dims(done, 1), -float("inf"), finished["scores"])
    worst = ops.min(pool["scores"], axis=1, keepdims=True)
    any_better = ops.any(scores > worst)

    def merge():
        _, pick = ops.top_k(ops.concatenate([pool["scores"], scores], axis=1), k)  # (batch, k) in [0, 2k)
        merged = {}
        for key in ("scores", "lengths", "truncated"):
            both = ops.concatenate([pool[key], finished[key] if key != "scores" else scores], axis=1)
            merged[key] = ops.take_along_axis(both, pick, axis=1)
        # Row indices into the pool's rows followed by the finished rows (each batch * k).
        origin = ops.where(pick < k, pick + ops.expand_dims(ops.arange(batch) * k, 1),
                           pick - k + ops.expand_dims(ops.arange(batch) * k, 1) + batch * k)
        origin = ops.reshape(origin, (-1,))
        for key in ("tokens", "weights"):
            merged[key] = ops.take(ops.concatenate([pool[key], finished[key]], axis=0), origin, axis=0)
        return merged

    return ops.cond(any_better, merge, lambda: dict(pool))


def _any_of(vocab_ids, ids):
    """(1, V) bool, True at each id of `ids`."""
    result = ops.zeros_like(vocab_ids, dtype="bool")
    for token_id in ids:
        result = ops.logical_or(result, vocab_ids == token_id)
    return result


def _greedy_search(
    step_fn, state, source_mask, max_lengths, max_length, vocab_size, bos_id, eos_id,
    alpha, beta, min_length, no_repeat_ngram_size, banned_ids,
):
    """The width-1 search: the likeliest allowed token at every step, until eos or the limit.

    Less work per token than a beam: the first maximum of the logits instead of a log softmax and
    a top-k, the log probability of the chosen token alone (its logit minus the log-sum-exp), and
    no reordering of hypotheses, state or buffers.
    """
    batch = ops.shape(source_mask)[0]
    source_length = ops.shape(source_mask)[1]
    vocab_ids = ops.expand_dims(ops.arange(vocab_size, dtype="int32"), 0)  # (1, V)
    eos_row = vocab_ids == eos_id
    banned_row = _any_of(vocab_ids, banned_ids)
    positions = ops.arange(max_length + 1)

    tokens = ops.where(ops.expand_dims(positions == 0, 0), bos_id, ops.full((batch, max_length + 1), eos_id, "int32"))
    log_probs = ops.zeros((batch,), dtype="float32")
    finished = ops.zeros((batch,), dtype="bool")
    truncated = ops.zeros((batch,), dtype="bool")
    lengths = ops.zeros((batch,), dtype="int32")
    weights = _new_step_buffer(batch, max_length, source_length)
    weight_sum = ops.zeros((batch, source_length), dtype="float32")

    def cond(t, tokens, log_probs, finished, truncated, lengths, weights, weight_sum, state):
        # The first step always runs (an empty batch too): the step buffer then has a shape.
        return ops.logical_and(t < max_length, ops.logical_or(t == 0, ops.logical_not(ops.all(finished))))

    def body(t, tokens, log_probs, finished, truncated, lengths, weights, weight_sum, state):
        logits, state, step_weights = step_fn(ops.take(tokens, t, axis=1), state)
        logits = ops.cast(logits, "float32")
        step_weights = ops.cast(step_weights, "float32")
        allowed = _allowed_log_probs(logits, tokens, t, eos_row, banned_row, min_length, no_repeat_ngram_size, vocab_size)
        # The last allowed position, and outputs that already ended, can only emit eos (free).
        live = ops.logical_not(finished)
        at_limit = ops.logical_and(live, t + 1 >= max_lengths)
        must_end = ops.logical_or(at_limit, finished)
        # argmax as "the first position of the maximum": the maximum is also the chosen token's
        # logit, and the reductions fuse under XLA (a variadic argmax reduction does not).
        best = ops.max(allowed, axis=-1, keepdims=True)
        first = ops.min(ops.where(allowed == best, vocab_ids, vocab_size), axis=-1)
        token = ops.where(must_end, eos_id, ops.cast(first, "int32"))
        token_log_prob = ops.squeeze(best, 1) - ops.logsumexp(logits, axis=-1)
        log_probs = log_probs + ops.where(must_end, 0.0, token_log_prob)
        lengths = lengths + ops.cast(live, "int32")
        finished = ops.logical_or(finished, token == eos_id)
        truncated = ops.logical_or(truncated, at_limit)
        tokens = ops.where(ops.expand_dims(positions == t + 1, 0), ops.expand_dims(token, 1), tokens)
        step_weights = ops.where(ops.expand_dims(live, 1), step_weights, 0.0)
        weights = _write_step(weights, t, step_weights)
        weight_sum = weight_sum + step_weights
        return t + 1, tokens, log_probs, finished, truncated, lengths, weights, weight_sum, state

    loop = ops.while_loop(
        cond,
        body,
        (ops.convert_to_tensor(0, "int32"), tokens, log_probs, finished, truncated, lengths, weights, weight_sum, state),
        maximum_iterations=max_length,
    )
    _, tokens, log_probs, finished, truncated, lengths, weights, weight_sum, _ = loop
    scores = log_probs / length_penalty(lengths, alpha)
    if beta > 0:
        scores = scores + coverage_penalty(ops.expand_dims(weight_sum, 1), source_mask, beta)[:, 0]
    return {
        "token_ids": tokens[:, 1:],
        "lengths": lengths - ops.cast(finished, "int32"),
        "scores": scores,
        "weights": _stack_steps(weights),
        "truncated": truncated,
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
