"""Beam search against brute force on hand-made Markov chains, and `Seq2Seq.generate` against a hand loop.

The chains run over a 5-token vocabulary (bos=0, eos=1, A=2, B=3, C=4) with lengths up to 4 tokens,
so every output can be enumerated: a beam as wide as the number of outputs must find the exact
optimum. Conventions checked here (see `keras_attn_zoo.decoding.beam_search`): bos is never
generated; an output holds at most `max_lengths[b]` tokens, eos included; the eos forced at that
limit costs nothing (and marks the output `truncated`); the score is log P / ((5 + |Y|) / 6)^α
with |Y| counting eos, plus the GNMT coverage penalty (coverage floored at `COVERAGE_FLOOR`).
"""

import itertools
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
import keras
from keras import ops

from keras_attn_zoo.decoding import beam_search, coverage_penalty, length_penalty
from keras_attn_zoo.decoding.beam_search import COVERAGE_FLOOR
from keras_attn_zoo.recipes import translation

pytestmark = pytest.mark.backend_agnostic
# Outside a compiled function JAX compiles each search's loop anew (about a second on 2 CPU
# cores), TensorFlow runs it eagerly: the property tests draw fewer cases on JAX.
EXAMPLES = 40 if keras.backend.backend() == "tensorflow" else 8

BOS, EOS, A, B, C = 0, 1, 2, 3, 4
V = 5
WORDS = (A, B, C)  # every token but bos and eos


def log_table(rows):
    rows = np.asarray(rows, "float64")
    return np.log(rows / rows.sum(-1, keepdims=True)).astype("float32")


def random_table(seed, order=1, size=V, eos_scale=0.05):
    """A random first-order (V, V) or second-order (V, V, V) table of log probabilities.

    Eos is made rare, so the best outputs have words in them rather than being empty.
    """
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(size, 0.7), size=(size,) * order)
    probs[..., EOS] *= eos_scale
    return np.log(probs / probs.sum(-1, keepdims=True)).astype("float32")


def markov_step(table, num_sources=None):
    """`step_fn` over a first-order (V, V) or second-order (V, V, V) table.

    A second-order chain keeps the token before the previous one in the state, so a search that
    reorders its hypotheses without reordering the state gets the wrong log probabilities. The
    attention weights are the one-hot of the input token, so they tell which hypothesis made them.
    """
    size = table.shape[-1]
    num_sources = num_sources or size
    table = ops.convert_to_tensor(table)

    def step_fn(token_ids, state):
        if len(table.shape) == 2:
            log_probs = ops.take(table, token_ids, axis=0)
        else:
            log_probs = ops.take(ops.reshape(table, (size * size, size)), state["before"] * size + token_ids, axis=0)
        weights = ops.one_hot(token_ids % num_sources, num_sources)
        return log_probs, {"before": token_ids}, weights

    return step_fn


def next_log_probs(table, before, previous):
    table = np.asarray(table, "float64")
    return table[previous] if table.ndim == 2 else table[before, previous]


def sequence_log_prob(table, words, limit):
    """log P of `words` then eos; the eos forced at the limit (len(words) == limit - 1) is free."""
    previous, before, total = BOS, BOS, 0.0
    for token in list(words) + ([EOS] if len(words) < limit - 1 else []):
        total += next_log_probs(table, before, previous)[token]
        before, previous = previous, token
    return total


def coverage_of(inputs, source_mask, beta):
    """The coverage penalty of a chain output whose step weights are one-hots of the inputs."""
    counts = np.bincount(inputs, minlength=len(source_mask))
    return beta * np.log(np.clip(counts, COVERAGE_FLOOR, 1.0))[np.asarray(source_mask)].sum()


def brute_force(table, limit, alpha=0.0, beta=0.0, min_length=0, source_mask=None, no_repeat=0, words=None):
    """(score, words) of every output of at most `limit` tokens (eos included), best first."""
    words = words or tuple(range(2, table.shape[-1]))
    results = []
    for n in range(min(min_length, limit - 1), limit):
        for output in itertools.product(words, repeat=n):
            if no_repeat and has_repeated_ngram((BOS,) + output, no_repeat):
                continue
            score = sequence_log_prob(table, output, limit) / ((5 + n + 1) / 6) ** alpha
            if beta:
                score += coverage_of((BOS,) + output, source_mask, beta)  # inputs of the n + 1 steps
            results.append((score, list(output)))
    return sorted(results, key=lambda r: -r[0])


def has_repeated_ngram(tokens, n):
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(grams) != len(set(grams))


def search(table, max_lengths, beam_size=1, max_length=None, source_mask=None, **options):
    size = table.shape[-1]
    max_lengths = np.atleast_1d(np.asarray(max_lengths, "int32"))
    batch = len(max_lengths)
    if source_mask is None:
        source_mask = np.ones((batch, size), bool)
    source_mask = np.broadcast_to(np.asarray(source_mask, bool), (batch, size))
    out = beam_search(
        markov_step(table),
        {"before": ops.full((batch * beam_size,), BOS, "int32")},
        ops.convert_to_tensor(source_mask),
        ops.convert_to_tensor(max_lengths),
        max_length=int(max_length or max_lengths.max()),
        vocab_size=size,
        bos_id=BOS,
        eos_id=EOS,
        beam_size=beam_size,
        **options,
    )
    return {key: ops.convert_to_numpy(value) for key, value in out.items()}


def words_of(out, row=0):
    return [int(t) for t in out["token_ids"][row][: int(out["lengths"][row])]]


def assert_ends_with_eos_padding(out, max_lengths):
    for row, limit in enumerate(max_lengths):
        ids, length = out["token_ids"][row], int(out["lengths"][row])
        assert length <= limit - 1
        assert EOS not in ids[:length].tolist()
        assert (ids[length:] == EOS).all(), ids


def reference_beam(table, beam_size, limit, alpha=0.0, beta=0.0, min_length=0, no_repeat=0, source_mask=None,
                   banned=(), stepwise=False):
    """Every hypothesis a width-k beam finishes, as (score, words, truncated), in plain Python.

    The live beam follows the rule of `beam_search` (the k best extensions by a token other than
    eos; with `stepwise`, ranked with the coverage penalty) and runs to the length limit without
    stopping early, so it finishes a superset of what the compiled search finishes.
    """
    size = table.shape[-1]
    source_mask = np.ones(size, bool) if source_mask is None else np.asarray(source_mask, bool)
    live = [((BOS,), 0.0)]
    finished = []
    for t in range(limit):
        candidates = []
        for tokens, log_prob in live:
            step = next_log_probs(table, tokens[-2] if len(tokens) > 1 else BOS, tokens[-1]).copy()
            step = step - np.logaddexp.reduce(step)
            step[[BOS, *banned]] = -np.inf
            if t < min_length:
                step[EOS] = -np.inf
            if no_repeat:
                for token in range(size):
                    if token != EOS and has_repeated_ngram(tokens + (token,), no_repeat):
                        step[token] = -np.inf
            cover = coverage_of(tokens, source_mask, beta) if beta else 0.0
            at_limit = t + 1 >= limit
            eos = 0.0 if at_limit else step[EOS]
            if np.isfinite(eos):
                score = (log_prob + eos) / ((5 + t + 1) / 6) ** alpha + cover
                finished.append((score, list(tokens[1:]), at_limit))
            if not at_limit:
                for token in range(size):
                    if token != EOS and np.isfinite(step[token]):
                        value = log_prob + step[token]
                        rank = value / ((5 + t + 1) / 6) ** alpha + cover if stepwise else value
                        candidates.append((rank, tokens + (token,), value))
        candidates.sort(key=lambda c: -c[0])
        live = [(tokens, value) for _, tokens, value in candidates[:beam_size]]
    return sorted(finished, key=lambda f: -f[0])


# -- Exact search: a wide beam equals brute force; greedy equals the argmax chain --------------
@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("seed", [0, 4, 8, 14])  # greedy misses the optimum of 4 and 8 (order 1), 0 and 14 (order 2)
def test_wide_beam_finds_the_brute_force_optimum(seed, order):
    table = random_table(seed, order)
    best, second = brute_force(table, limit=4)[:2]
    assert best[0] - second[0] > 1e-3  # a unique optimum
    assert len(best[1]) == 3
    out = search(table, [4], beam_size=40)  # 40 = every output of at most 3 words
    assert words_of(out) == best[1]
    np.testing.assert_allclose(out["scores"][0], best[0], rtol=1e-5)
    assert out["truncated"].tolist() == [True]  # 3 words and the eos forced at the limit


def chain_greedy(table, limit, alpha=0.0, beta=0.0, min_length=0, no_repeat=0, source_mask=None):
    """Greedy search over a chain in plain Python: (words, score, truncated)."""
    words, before, previous, log_prob = [], BOS, BOS, 0.0
    while True:
        step = next_log_probs(table, before, previous)
        step = step - np.logaddexp.reduce(step)
        if len(words) + 1 >= limit:
            truncated = True
            break
        allowed = [t for t in range(table.shape[-1]) if t != BOS]
        if len(words) < min_length:
            allowed.remove(EOS)
        if no_repeat:
            allowed = [t for t in allowed if t == EOS or not has_repeated_ngram([BOS] + words + [t], no_repeat)]
        token = max(allowed, key=lambda t: step[t])  # the first maximum on ties
        log_prob += step[token]
        if token == EOS:
            truncated = False
            break
        words.append(token)
        before, previous = previous, token
    score = log_prob / ((5 + len(words) + 1) / 6) ** alpha
    if beta:
        score += coverage_of([BOS] + words, source_mask, beta)
    return words, score, truncated


@pytest.mark.parametrize(
    "options",
    [{}, {"alpha": 0.6}, {"min_length": 3}, {"no_repeat_ngram_size": 2}, {"beta": 0.3}],
    ids=["plain", "alpha", "min_length", "no_repeat", "beta"],
)
@pytest.mark.parametrize("order", [1, 2])
def test_greedy_loop_equals_a_hand_greedy(order, options):
    limits = np.array([3, 8, 5, 7], "int32")
    masks = np.array([[True] * 5, [True, False, True, True, True], [True, True, False, False, True], [True] * 5])
    outputs = []
    for seed in range(6):
        table = random_table(seed, order, eos_scale=0.3)
        out = search(table, limits, beam_size=1, max_length=8, source_mask=masks, **options)
        for row, limit in enumerate(limits):
            words, score, truncated = chain_greedy(
                table, int(limit), options.get("alpha", 0.0), options.get("beta", 0.0), options.get("min_length", 0),
                options.get("no_repeat_ngram_size", 0), masks[row],
            )
            assert words_of(out, row) == words, (seed, row)
            np.testing.assert_allclose(out["scores"][row], score, rtol=1e-5, atol=1e-6)
            assert bool(out["truncated"][row]) == truncated
            outputs.append(tuple(words))
        assert_ends_with_eos_padding(out, limits)
    assert len(set(outputs)) >= 8  # the cases differ from one another


@pytest.mark.parametrize("beam_size", [1, 3])
def test_the_search_normalises_what_a_step_returns(beam_size):
    # A step returns logits: shifting each row by a constant changes no output and no score.
    table = random_table(5, order=2)
    shifted = table + np.random.default_rng(0).normal(0, 3, table.shape[:-1] + (1,)).astype("float32")
    plain = search(table, [6, 4], beam_size=beam_size, alpha=0.6)
    out = search(shifted, [6, 4], beam_size=beam_size, alpha=0.6)
    np.testing.assert_array_equal(out["token_ids"], plain["token_ids"])
    np.testing.assert_allclose(out["scores"], plain["scores"], rtol=1e-5)


def test_beam_beats_myopic_greedy():
    # From bos, A is likelier than B, but after A every token is a coin flip while B ends surely.
    table = log_table(
        [
            [0.01, 0.01, 0.57, 0.40, 0.01],  # bos
            [0.2, 0.2, 0.2, 0.2, 0.2],  # eos (never an input here)
            [0.01, 0.26, 0.25, 0.24, 0.24],  # A
            [0.01, 0.96, 0.01, 0.01, 0.01],  # B
            [0.2, 0.2, 0.2, 0.2, 0.2],  # C
        ]
    )
    greedy = search(table, [4], beam_size=1)
    beam = search(table, [4], beam_size=2)
    assert words_of(greedy) == [A]
    assert words_of(beam) == [B]
    np.testing.assert_allclose(greedy["scores"][0], math.log(0.57 * 0.26), rtol=1e-5)
    np.testing.assert_allclose(beam["scores"][0], math.log(0.40 * 0.96), rtol=1e-5)
    assert beam["scores"][0] > greedy["scores"][0]


# -- The beam keeps what it finished ------------------------------------------------------------
def early_end_chain(size=50):
    """The chain of issue 8: from bos, eos has p = 0.2 and token 3 p = 0.6; 3 is followed by 4 or
    5 (p ≈ 0.5 each), and every other token by a near-uniform spread. [eos] (log 0.2 = -1.61) is
    the best output, but two live prefixes (log 0.6 + log 0.5 ≈ -1.2) outrank it after one step."""
    probs = np.full((size, size), 1.0)
    probs[:, 0] = probs[:, 1] = 1e-6  # pad and bos
    probs[1] = 1e-6
    probs[1, 2], probs[1, 3] = 0.2, 0.6
    probs[1, 4:] = 0.2 / (size - 4)
    probs[3] = 1e-4
    probs[3, 4] = probs[3, 5] = 0.5
    return log_table(probs)


@pytest.mark.parametrize("beam_size", [2, 3, 4])
def test_a_finished_hypothesis_is_not_pushed_out_by_decaying_prefixes(beam_size):
    table = early_end_chain()
    out = beam_search(
        markov_step(table), {"before": ops.full((beam_size,), 1, "int32")}, ops.ones((1, 50), "bool"),
        ops.convert_to_tensor(np.array([30], "int32")), max_length=30, vocab_size=50, bos_id=1, eos_id=2,
        beam_size=beam_size,
    )
    out = {key: ops.convert_to_numpy(value) for key, value in out.items()}
    assert out["lengths"].tolist() == [0]  # [eos]
    np.testing.assert_allclose(out["scores"][0], math.log(0.2), rtol=1e-4)
    assert not out["truncated"][0]


@st.composite
def chain_cases(draw):
    size = draw(st.integers(4, 8))
    order = draw(st.sampled_from([1, 2]))
    limit = draw(st.integers(2, 5))
    options = {
        "alpha": draw(st.sampled_from([0.0, 0.6, 1.5])),
        "beta": draw(st.sampled_from([0.0, 0.4])),
        "min_length": draw(st.sampled_from([0, 2])),
        "no_repeat_ngram_size": draw(st.sampled_from([0, 1, 2])),
    }
    options["stepwise_coverage"] = options["beta"] > 0 and draw(st.booleans())
    table = random_table(draw(st.integers(0, 10_000)), order, size=size, eos_scale=draw(st.sampled_from([0.05, 1.0])))
    return table, limit, options


@settings(max_examples=EXAMPLES, deadline=None)
@given(chain_cases(), st.integers(2, 4))
def test_the_beam_returns_the_best_hypothesis_it_finished(case, beam_size):
    table, limit, options = case
    finished = reference_beam(
        table, beam_size, limit, options["alpha"], options["beta"], options["min_length"],
        options["no_repeat_ngram_size"], stepwise=options["stepwise_coverage"],
    )
    out = search(table, [limit], beam_size=beam_size, **options)
    # Never below any hypothesis the beam finished, though the search may stop early.
    assert out["scores"][0] >= finished[0][0] - 1e-4 * abs(finished[0][0]) - 1e-5
    if len(finished) > 1 and finished[0][0] - finished[1][0] > 1e-3:
        assert words_of(out) == finished[0][1]
        assert bool(out["truncated"][0]) == finished[0][2]


@settings(max_examples=EXAMPLES * 5 // 8, deadline=None)
@given(chain_cases())
def test_a_beam_wide_enough_to_be_exhaustive_equals_brute_force(case):
    table, limit, options = case
    options["stepwise_coverage"] = False  # pruning by coverage is not exhaustive search
    size = table.shape[-1]
    beam_size = (size - 2) ** (limit - 1)  # every prefix of every length fits in the beam
    assume(beam_size <= 256)
    best = brute_force(
        table, limit, options["alpha"], options["beta"], options["min_length"], np.ones(size, bool),
        options["no_repeat_ngram_size"],
    )[0]
    out = search(table, [limit], beam_size=max(beam_size, 2), **options)
    np.testing.assert_allclose(out["scores"][0], best[0], rtol=1e-4, atol=1e-5)


# -- Lengths, eos and limits --------------------------------------------------------------------
NEVER_ENDS = log_table([[0.05, 0.001, 0.5, 0.449, 0.05]] + [[0.3, 0.001, 0.3, 0.349, 0.05]] * 4)
LOVES_EOS = log_table([[0.05, 0.8, 0.1, 0.05, 0.01]] * 5)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_per_example_max_lengths_end_with_eos_at_the_limit(beam_size):
    limits = [1, 3, 5, 7]
    out = search(NEVER_ENDS, limits, beam_size=beam_size, max_length=9)
    assert out["token_ids"].shape == (4, 9)
    assert out["lengths"].tolist() == [0, 2, 4, 6]  # the text before eos: limit - 1 tokens
    assert out["truncated"].tolist() == [True] * 4
    for row, limit in enumerate(limits):
        assert out["token_ids"][row][limit - 1] == EOS
    assert_ends_with_eos_padding(out, limits)
    assert out["weights"].shape == (4, 9, V)
    assert not search(LOVES_EOS, [8], beam_size=beam_size)["truncated"].any()


@pytest.mark.parametrize("beam_size", [1, 3])
def test_min_length_forbids_early_eos(beam_size):
    assert search(LOVES_EOS, [8], beam_size=beam_size)["lengths"].tolist() == [0]
    out = search(LOVES_EOS, [8, 8], beam_size=beam_size, min_length=3)
    assert out["lengths"].tolist() == [3, 3]  # eos as soon as it is allowed
    assert_ends_with_eos_padding(out, [8, 8])
    # Exactly the best output of at least 2 words (a beam of 40 holds every output of <= 3 words).
    wide = search(LOVES_EOS, [4], beam_size=40, min_length=2)
    best = brute_force(LOVES_EOS, limit=4, min_length=2)[0]
    assert words_of(wide) == best[1]
    np.testing.assert_allclose(wide["scores"][0], best[0], rtol=1e-5)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_bos_and_banned_ids_are_never_generated(beam_size):
    # bos is the likeliest token everywhere, then C.
    table = log_table([[0.5, 0.001, 0.1, 0.1, 0.299]] * 5)
    out = search(table, [4], beam_size=beam_size)
    assert words_of(out) == [C, C, C]
    out = search(table, [3], beam_size=beam_size, banned_ids=(C,))
    assert len(words_of(out)) == 2 and set(words_of(out)) <= {A, B}


# -- Repeat blocking ----------------------------------------------------------------------------
LOVES_REPEATS = log_table(
    [
        [0.01, 0.01, 0.90, 0.07, 0.01],  # bos -> A
        [0.2, 0.2, 0.2, 0.2, 0.2],
        [0.02, 0.02, 0.90, 0.05, 0.01],  # A -> A
        [0.02, 0.02, 0.05, 0.90, 0.01],  # B -> B
        [0.02, 0.02, 0.05, 0.01, 0.90],  # C -> C
    ]
)


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("beam_size", [1, 4])
def test_no_repeat_ngram_never_repeats(beam_size, n):
    unblocked = search(LOVES_REPEATS, [10], beam_size=beam_size)
    assert has_repeated_ngram([BOS] + words_of(unblocked), n)
    out = search(LOVES_REPEATS, [10], beam_size=beam_size, no_repeat_ngram_size=n)
    words = words_of(out)
    assert not has_repeated_ngram([BOS] + words, n), words
    if beam_size == 1:  # greedy over the tokens that repeat no n-gram (counting bos), by hand
        expected = []
        while len(expected) < 9:
            tokens = [BOS] + expected
            allowed = [t for t in range(1, V) if t == EOS or not has_repeated_ngram(tokens + [t], n)]
            token = max(allowed, key=lambda t: LOVES_REPEATS[tokens[-1], t])
            if token == EOS:
                break
            expected.append(token)
        assert words == expected
        assert len(words) >= n  # the blocking steered the output, it did not just end it


def test_no_repeat_bigram_wide_beam_is_the_constrained_optimum():
    # A -> A is the likeliest step everywhere, so the free optimum repeats it.
    table = log_table(
        [[0.05, 0.01, 0.6, 0.3, 0.04], [0.2] * 5, [0.1, 0.05, 0.6, 0.2, 0.05], [0.3, 0.08, 0.4, 0.15, 0.07], [0.1, 0.3, 0.25, 0.2, 0.15]]
    )
    best, second = brute_force(table, limit=5, no_repeat=2)[:2]
    assert best[0] - second[0] > 1e-4
    assert best[1] != brute_force(table, limit=5)[0][1]  # the constraint matters
    out = search(table, [5], beam_size=121, no_repeat_ngram_size=2)  # 121 = outputs of <= 4 words
    assert words_of(out) == best[1]
    np.testing.assert_allclose(out["scores"][0], best[0], rtol=1e-5)


# -- Length and coverage penalties --------------------------------------------------------------
SHORT_OR_LONG = log_table(
    [
        [0.02, 0.47, 0.49, 0.01, 0.01],  # bos: end now (0.47), or A
        [0.2] * 5,
        [0.02, 0.03, 0.93, 0.01, 0.01],  # A -> A
        [0.2] * 5,
        [0.2] * 5,
    ]
)


def test_length_penalty_formula():
    np.testing.assert_allclose(ops.convert_to_numpy(length_penalty(np.array([1, 4]), 0.0)), [1.0, 1.0])
    np.testing.assert_allclose(
        ops.convert_to_numpy(length_penalty(np.array([1, 4, 11]), 0.6)), [1.0, 1.5**0.6, (16 / 6) ** 0.6], rtol=1e-6
    )


def test_length_penalty_prefers_the_long_hypothesis_as_gnmt_predicts():
    short = math.log(0.47)  # [eos]: |Y| = 1
    long = math.log(0.49 * 0.93 * 0.93)  # [A, A, A] and the free eos at the limit: |Y| = 4
    assert short > long and long / 1.5 > short  # alpha = 0 keeps the short one, alpha = 1 the long one
    for alpha, expected, score in ((0.0, [], short), (1.0, [A, A, A], long / 1.5), (0.6, [A, A, A], long / 1.5**0.6)):
        for beam_size in (2, 40):
            out = search(SHORT_OR_LONG, [4], beam_size=beam_size, alpha=alpha)
            assert words_of(out) == expected, (alpha, beam_size)
            np.testing.assert_allclose(out["scores"][0], score, rtol=1e-5)
        assert brute_force(SHORT_OR_LONG, limit=4, alpha=alpha)[0][1] == expected


def test_coverage_penalty_by_hand():
    attention_sum = np.array([[[0.5, 1.5, 0.0, 0.2], [1.0, 1.0, 1.0, 0.0]]], "float32")  # (batch 1, beam 2, Ts 4)
    mask = np.array([[True, True, True, False]])
    got = ops.convert_to_numpy(coverage_penalty(attention_sum, mask, 0.4))
    expected = [0.4 * (math.log(0.5) + 0.0 + math.log(0.1)), 0.0]  # position 3 is padding; 0.0 is floored at 0.1
    np.testing.assert_allclose(got, [expected], rtol=1e-5)


def test_coverage_penalty_is_bounded_by_its_floor():
    # Nothing read at all: each of the 40 source tokens costs beta * log(10), not log(1e-10) or -inf.
    got = ops.convert_to_numpy(coverage_penalty(np.zeros((1, 1, 40), "float32"), np.ones((1, 40), bool), 0.2))
    np.testing.assert_allclose(got, [[0.2 * 40 * math.log(COVERAGE_FLOOR)]], rtol=1e-6)
    assert np.isfinite(got).all()


def test_coverage_penalty_in_the_search_matches_brute_force():
    # The weights are the one-hot of the input token, so source position i is covered once token i
    # has been read; position 1 (eos) never is. Each example masks different positions.
    masks = np.array([[True, False, True, True, False], [True, True, True, False, False]])
    plain = brute_force(SHORT_OR_LONG, limit=4)[0]
    out = search(SHORT_OR_LONG, [4, 4], beam_size=40, beta=3.0, source_mask=masks)
    for row, mask in enumerate(masks):
        best, second = brute_force(SHORT_OR_LONG, limit=4, beta=3.0, source_mask=mask)[:2]
        assert best[0] - second[0] > 1e-4
        assert words_of(out, row) == best[1]
        np.testing.assert_allclose(out["scores"][row], best[0], rtol=1e-5)
    assert words_of(out, 0) != plain[1]  # coverage made it read both A and B
    assert {A, B} <= set(words_of(out, 0))


# -- The weights belong to the chosen hypothesis ------------------------------------------------
@pytest.mark.parametrize("beam_size", [1, 3])
def test_weights_belong_to_the_chosen_hypothesis(beam_size):
    table = random_table(3, order=2)
    limits = [6, 4]
    out = search(table, limits, beam_size=beam_size, max_length=7)
    for row in range(2):
        length = int(out["lengths"][row])
        inputs = [BOS] + words_of(out, row)  # the token read at each step, the eos step included
        np.testing.assert_array_equal(out["weights"][row][: length + 1], np.eye(V)[inputs])
        assert not out["weights"][row][length + 1 :].any()  # nothing after the output ended


# -- A real Seq2Seq -----------------------------------------------------------------------------
SOURCES = [[5, 6, 7, 8, 9, 10], [11, 12, 13, 0, 0, 0], [14, 15, 16, 17, 18, 0]]


SEED = 13  # premises checked below hold for it on TensorFlow and JAX (seeds 13, 15, 17 do)


@pytest.fixture(scope="module")
def model():
    import keras

    keras.utils.set_random_seed(SEED)
    # A random model whose outputs vary from token to token and repeat n-grams when not blocked
    # (the tests below check both premises; the seed is one where they hold on every backend).
    return translation(source_vocab_size=30, target_vocab_size=30, units=16, embedding_dim=8)


def hand_greedy(model, source_ids, max_length):
    """The decoder stepped from Python with argmax, one example, as a tutorial would do it."""
    source = ops.convert_to_tensor(np.array([source_ids], "int32"))
    memory, mask, encoder_state = model._encode(source, training=False)
    bundle = model.decoder.precompute_memory(memory, mask)
    state = model.decoder.get_initial_state(bundle, encoder_state)
    limit = min(max_length, 2 * len(source_ids) + 10)
    token, words, score, weights = 1, [], 0.0, []
    for t in range(limit):
        embedded = ops.take(model.target_embedding.embeddings, ops.convert_to_tensor([token]), axis=0)
        output, state, w = model.decoder.step(embedded, state, bundle)
        log_probs = ops.convert_to_numpy(ops.log_softmax(model._logits(output), axis=-1))[0]
        weights.append(ops.convert_to_numpy(w)[0])
        if t + 1 >= limit:
            break  # the eos forced at the limit
        allowed = log_probs.copy()
        allowed[[0, 1]] = -np.inf  # pad and bos are never generated
        token = int(np.argmax(allowed))
        score += float(log_probs[token])
        if token == 2:
            break
        words.append(token)
    return words, score, np.stack(weights)


def test_seq2seq_greedy_generate_equals_the_hand_loop(model):
    out = model.generate(np.array([SOURCES[0]], "int32"), max_length=12)
    words, score, weights = hand_greedy(model, SOURCES[0], max_length=12)
    assert len(set(words)) >= 3  # a non-trivial output
    assert words_of(out) == words
    np.testing.assert_allclose(out["scores"][0], score, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["weights"][0][: len(weights)], weights, rtol=1e-4, atol=1e-6)


def pad(rows):
    width = max(len(row) for row in rows)
    return np.array([row + [0] * (width - len(row)) for row in rows], "int32")


@pytest.mark.parametrize("beam_size", [1, 3])
def test_seq2seq_generate_is_deterministic_and_batch_independent(model, beam_size):
    # Random weights: eos at once is the likeliest output, so a minimum length makes outputs to compare.
    options = dict(beam_size=beam_size, max_length=12, alpha=0.6, min_length=4)
    batch = pad(SOURCES)
    first = model.generate(batch, **options)
    again = model.generate(batch, **options)
    for key in ("token_ids", "lengths", "scores", "weights"):
        np.testing.assert_array_equal(first[key], again[key])
    for row, source in enumerate(SOURCES):
        real = [t for t in source if t]
        alone = model.generate(np.array([real], "int32"), **options)
        np.testing.assert_array_equal(alone["token_ids"][0], first["token_ids"][row])
        assert alone["lengths"][0] == first["lengths"][row]
        np.testing.assert_allclose(alone["scores"][0], first["scores"][row], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(alone["weights"][0], first["weights"][row][:, : len(real)], atol=1e-5)
        assert not first["weights"][row][:, len(real) :].any()  # padding gets no attention


@pytest.mark.parametrize("n", [1, 2])
def test_seq2seq_generate_blocks_repeated_ngrams(model, n):
    options = dict(beam_size=2, max_length=12, min_length=6)
    unblocked = model.generate(pad(SOURCES), **options)
    assert any(has_repeated_ngram([1] + words_of(unblocked, row), n) for row in range(len(SOURCES)))
    out = model.generate(pad(SOURCES), no_repeat_ngram_size=n, **options)
    for row in range(len(SOURCES)):
        assert not has_repeated_ngram([1] + words_of(out, row), n)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_seq2seq_generate_with_xla_gives_the_same_outputs(model, beam_size):
    options = dict(beam_size=beam_size, max_length=12, alpha=0.6, no_repeat_ngram_size=2, min_length=4)
    plain = model.generate(pad(SOURCES), jit_compile=False, **options)
    compiled = model.generate(pad(SOURCES), jit_compile=True, **options)  # padded to (4, 16)
    np.testing.assert_array_equal(compiled["token_ids"], plain["token_ids"])
    np.testing.assert_array_equal(compiled["lengths"], plain["lengths"])
    np.testing.assert_allclose(compiled["scores"], plain["scores"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(compiled["weights"], plain["weights"], atol=1e-5)
    with pytest.raises(ValueError, match="jit_compile"):
        model.generate(pad(SOURCES), jit_compile="yes")


@pytest.mark.parametrize("beam_size", [1, 3])
def test_seq2seq_generate_on_an_empty_batch(model, beam_size):
    out = model.generate(np.zeros((0, 5), "int32"), beam_size=beam_size, max_length=12)
    assert out["token_ids"].shape == (0, 12) and out["lengths"].shape == (0,) and out["scores"].shape == (0,)
    assert out["weights"].shape == (0, 12, 5)


@pytest.mark.parametrize(
    "config",
    [
        dict(attention="luong_general", cell="lstm"),
        dict(attention="luong_dot", input_feeding=False),
        dict(attention="luong_concat"),
        dict(attention="cosine", decoder_layers=2),
        dict(attention=None),
        dict(attention="bahdanau", coverage=True),
        dict(attention="bahdanau", tie_embeddings=False, bidirectional=False, encoder_layers=2),
    ],
    ids=["luong_lstm", "dot_no_feeding", "concat", "cosine_2_layers", "no_attention", "coverage", "untied"],
)
def test_xla_and_plain_searches_agree_for_every_decoder(config):
    import keras

    keras.utils.set_random_seed(3)
    model = translation(source_vocab_size=30, target_vocab_size=30, units=16, embedding_dim=8, **config)
    model.target_embedding.embeddings.assign(model.target_embedding.embeddings * 8.0)
    for beam_size in (1, 2):
        options = dict(beam_size=beam_size, max_length=10, beta=0.2, min_length=3)
        plain = model.generate(pad(SOURCES), jit_compile=False, **options)
        compiled = model.generate(pad(SOURCES), **options)
        np.testing.assert_array_equal(compiled["token_ids"], plain["token_ids"])
        np.testing.assert_allclose(compiled["scores"], plain["scores"], rtol=1e-4, atol=1e-5)


def test_generate_auto_compiles_with_xla_where_keras_would(model, monkeypatch):
    import keras

    import keras_attn_zoo.models.encoder_decoder as encoder_decoder_module

    expected = {"jax": [True, True], "tensorflow": [False, True]}.get(keras.backend.backend(), [False, False])
    for has_accelerator, jit in zip((False, True), expected):
        monkeypatch.setattr(encoder_decoder_module, "_has_accelerator", lambda: has_accelerator)
        model._search_functions.clear()
        model.generate(pad(SOURCES), max_length=6)
        assert [key[1] for key in model._search_functions] == [jit], has_accelerator


def test_generate_rejects_ids_that_are_not_a_batch(model):
    with pytest.raises(ValueError, match=r"source_ids of shape \(6,\); expected \(batch, source length\)"):
        model.generate(np.array(SOURCES[0], "int32"))
