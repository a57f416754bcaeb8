"""BahdanauAttention and LuongAttention: numbers by hand, masks, shapes, errors, saving, training."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keras
from keras import ops

from keras_attn_zoo.layers import BahdanauAttention, LuongAttention, masked_softmax

pytestmark = pytest.mark.backend_agnostic

BATCH, TQ, TV, DIM = 2, 3, 5, 4

# Every scoring variant: (id, class, constructor arguments).
CONFIGS = {
    "bahdanau": (BahdanauAttention, {"units": 4}),
    "bahdanau-normalize": (BahdanauAttention, {"units": 4, "normalize": True}),
    "dot": (LuongAttention, {"score_mode": "dot"}),
    "dot-scale": (LuongAttention, {"score_mode": "dot", "scale": True}),
    "general": (LuongAttention, {"score_mode": "general"}),
    "general-scale": (LuongAttention, {"score_mode": "general", "scale": True}),
    "concat": (LuongAttention, {"score_mode": "concat", "units": 6}),
    "concat-scale": (LuongAttention, {"score_mode": "concat", "scale": True}),
    "cosine": (LuongAttention, {"score_mode": "cosine"}),
    "cosine-fixed": (LuongAttention, {"score_mode": "cosine", "scale": False, "scale_init": 4.0}),
    "cosine-scale": (LuongAttention, {"score_mode": "cosine", "scale": True, "scale_init": 2.0}),
}
# One per score equation, for the costlier tests.
ONE_PER_SCORE = ["bahdanau", "bahdanau-normalize", "dot-scale", "general", "concat", "cosine-scale"]


def make(config_id, **extra):
    cls, kwargs = CONFIGS[config_id]
    return cls(**kwargs, **extra)


def np_(x):
    return ops.convert_to_numpy(x)


def random_inputs(seed=0, tq=TQ, tv=TV, dim=DIM, value_dim=None):
    rng = np.random.default_rng(seed)
    query = rng.normal(size=(BATCH, tq, dim)).astype("float32")
    value = rng.normal(size=(BATCH, tv, value_dim or dim)).astype("float32")
    return query, value


# Row 0 has 3 real memory positions, row 1 all 5.
VALUE_MASK = np.array([[True, True, True, False, False], [True] * TV])


# -- NumPy references of the docstring equations -------------------------------------------------
def np_softmax(scores, mask=None):
    if mask is not None:
        scores = np.where(mask[:, None, :], scores, -np.inf)
    scores = scores - scores.max(-1, keepdims=True)
    e = np.exp(scores)
    return e / e.sum(-1, keepdims=True)


def np_unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def np_scores(layer, query, key):
    """score(q, k) for every query/key pair, from the layer's own weights and its docstring."""
    w = {v.path.split("/")[-1]: np_(v) for v in layer.weights}
    if isinstance(layer, BahdanauAttention):
        features = (query @ w["query_kernel"])[:, :, None, :] + (key @ w["key_kernel"])[:, None, :, :]
        v = w["score_vector"]
        if layer.normalize:
            features = features + w["score_bias"]
            v = w["score_gain"] * v / np.linalg.norm(v)
        return (np.tanh(features) * v).sum(-1)
    mode = layer.score_mode
    if mode == "dot":
        scores = query @ key.transpose(0, 2, 1)
    elif mode == "general":
        scores = query @ (key @ w["kernel"]).transpose(0, 2, 1)
    elif mode == "concat":
        features = (query @ w["query_kernel"])[:, :, None, :] + (key @ w["key_kernel"])[:, None, :, :]
        scores = (np.tanh(features) * w["score_vector"]).sum(-1)
    else:
        scores = np_unit(query) @ np_unit(key).transpose(0, 2, 1)
    if "score_scale" in w:
        scores = scores * w["score_scale"]
    elif layer.scale_init is not None:
        scores = scores * layer.scale_init
    return scores


def set_known_weights(layer, seed=7):
    """Small, known, non-default values for every weight (scales and gains away from 1)."""
    rng = np.random.default_rng(seed)
    for variable in layer.weights:
        name = variable.path.split("/")[-1]
        if name in ("score_scale", "score_gain"):
            value = np.asarray(1.7, "float32")
        else:
            value = rng.uniform(-0.5, 0.5, size=variable.shape).astype("float32")
        variable.assign(value)


# -- Numbers small enough to check by hand -------------------------------------------------------
def test_cosine_score_of_the_seed_example():
    # Decoder state [0.91, 0.38] against the encoder state of "Let's", [-0.76, 0.75]:
    # (0.91 * -0.76 + 0.38 * 0.75) / (0.986 * 1.068) = -0.4066 / 1.0530 = -0.386.
    layer = LuongAttention("cosine", scale=False, scale_init=1.0)
    layer.build([(1, 1, 2), (1, 1, 2)])
    query = np.array([[[0.91, 0.38]]], "float32")
    key = np.array([[[-0.76, 0.75]]], "float32")
    score = np_(layer.score(query, layer.process_key(key)))
    assert score.shape == (1, 1, 1)
    assert round(float(score[0, 0, 0]), 2) == -0.39
    assert score[0, 0, 0] == pytest.approx(-0.4066 / (np.hypot(0.91, 0.38) * np.hypot(-0.76, 0.75)), abs=1e-6)


def test_cosine_attention_can_focus():
    # 40 keys, the query points exactly at key 7. Unscaled cosine scores lie in [-1, 1], so even
    # then key 7 gets at most e / (e + 39 / e) of the weight; the default learned scale starts at 10.
    rng = np.random.default_rng(0)
    keys = rng.normal(size=(1, 40, 8)).astype("float32")
    query = keys[:, 7:8] * 3.0
    bound = np.e / (np.e + 39 / np.e)
    unscaled = LuongAttention("cosine", scale=False, scale_init=1.0)
    _, weights = unscaled([query, keys], return_attention_scores=True)
    assert 0.05 < np_(weights)[0, 0, 7] <= bound + 1e-6  # about 0.16 at best: near uniform
    default = LuongAttention("cosine")
    _, weights = default([query, keys], return_attention_scores=True)
    assert np_(weights)[0, 0, 7] > 0.8  # 0.89 here
    assert [v.path.split("/")[-1] for v in default.trainable_weights] == ["score_scale"]
    assert float(np_(default.score_scale)) == 10.0
    # Fixed: no weight, the scores times scale_init.
    fixed = LuongAttention("cosine", scale=False, scale_init=10.0)
    _, fixed_weights = fixed([query, keys], return_attention_scores=True)
    assert not fixed.weights
    np.testing.assert_allclose(np_(fixed_weights), np_(weights), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match=r"Received: scale_init='big'; expected a number or None"):
        LuongAttention("cosine", scale_init="big")


def _gradients_at_zero_rows(layer, query, memory, mask, jit):
    """d(sum of the context)/d(query, memory) on this backend (and under XLA when `jit`)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        def loss(q, m):
            return ops.sum(layer([q, m], mask=[None, mask]))

        grad = jax.grad(loss, argnums=(0, 1))
        return (jax.jit(grad) if jit else grad)(query, memory)
    import tensorflow as tf

    def gradients(q, m):
        with tf.GradientTape() as tape:
            tape.watch([q, m])
            total = tf.reduce_sum(layer([q, m], mask=[None, mask]))
        return tape.gradient(total, [q, m])

    if jit:
        gradients = tf.function(gradients, jit_compile=True)
    return gradients(tf.constant(query), tf.constant(memory))


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "xla"])
def test_cosine_gradient_is_finite_at_all_zero_rows(jit):
    # A masked bidirectional RNN pads its memory with exact zeros; a zero query happens too.
    if keras.backend.backend() not in ("tensorflow", "jax"):
        pytest.skip("gradients are taken with TensorFlow or JAX")
    rng = np.random.default_rng(1)
    memory = rng.normal(size=(2, 5, 4)).astype("float32")
    memory[0, 3:] = 0.0
    query = rng.normal(size=(2, 3, 4)).astype("float32")
    query[1, 0] = 0.0
    mask = np.array([[True, True, True, False, False], [True] * 5])
    layer = LuongAttention("cosine")
    layer.build([query.shape, memory.shape])
    for gradient in _gradients_at_zero_rows(layer, query, memory, mask, jit):
        values = np_(gradient)
        assert np.isfinite(values).all()
        assert np.abs(values).sum() > 0


def test_dot_scores_give_the_softmax_weights_and_weighted_sum():
    # query [1, 0] . keys gives exactly the scores -0.41 and 0.01:
    # softmax = e^-0.41 / (e^-0.41 + e^0.01) = 0.3965 and 0.6035.
    query = np.array([[[1.0, 0.0]]], "float32")
    key = np.array([[[-0.41, 0.0], [0.01, 0.0]]], "float32")
    value = np.array([[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]], "float32")
    context, weights = LuongAttention("dot")([query, value, key], return_attention_scores=True)
    weights, context = np_(weights), np_(context)
    np.testing.assert_allclose(np.round(weights[0, 0], 2), [0.40, 0.60])
    np.testing.assert_allclose(weights[0, 0], [0.39652, 0.60348], atol=1e-5)
    expected = 0.39652 * value[0, 0] + 0.60348 * value[0, 1]  # [2.8104, 3.8104, 4.8104]
    np.testing.assert_allclose(context[0, 0], expected, atol=1e-4)


def test_bahdanau_score_by_hand():
    # W_q = W_k = I, v = [1, 1], q = 0: scores are tanh(1) + tanh(0) = 0.76159 and 0,
    # softmax = 2.14168 / 3.14168 = 0.68170 and 0.31830.
    layer = BahdanauAttention(2)
    layer.build([(1, 1, 2), (1, 2, 2)])
    layer.set_weights([np.eye(2, dtype="float32"), np.eye(2, dtype="float32"), np.ones(2, "float32")])
    query = np.zeros((1, 1, 2), "float32")
    value = np.array([[[1.0, 0.0], [0.0, 0.0]]], "float32")
    context, weights = layer([query, value], return_attention_scores=True)
    np.testing.assert_allclose(np_(weights)[0, 0], [0.68170, 0.31830], atol=1e-5)
    np.testing.assert_allclose(np_(context)[0, 0], [0.68170, 0.0], atol=1e-5)


def test_general_score_by_hand():
    # kernel (key_dim, query_dim) = [[2, 0], [0, 0]], q = [1, 1]: scores q . (k W) = 2 k_1.
    layer = LuongAttention("general", scale=True)
    layer.build([(1, 1, 2), (1, 2, 2)])
    layer.set_weights([np.array([[2.0, 0.0], [0.0, 0.0]], "float32"), np.asarray(0.5, "float32")])
    query = np.ones((1, 1, 2), "float32")
    key = np.array([[[1.0, 5.0], [0.0, -3.0]]], "float32")
    scores = np_(layer.score(query, layer.process_key(key)))
    np.testing.assert_allclose(scores[0, 0], [0.5 * 2.0, 0.0], atol=1e-6)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_matches_numpy_equation_with_known_weights(name):
    layer = make(name)
    query, value = random_inputs(seed=1)
    layer.build([query.shape, value.shape])
    set_known_weights(layer)
    context, weights = layer([query, value], mask=[None, VALUE_MASK], return_attention_scores=True)
    expected_weights = np_softmax(np_scores(layer, query, value), VALUE_MASK)
    np.testing.assert_allclose(np_(weights), expected_weights, atol=1e-5)
    np.testing.assert_allclose(np_(context), expected_weights @ value, atol=1e-5)


# -- Masks ---------------------------------------------------------------------------------------
def test_masked_softmax_gives_exact_zeros_and_no_nan():
    scores = np.array([[[3.0, 1.0, 100.0], [2.0, 2.0, 2.0]]], "float32")
    weights = np_(masked_softmax(scores, np.array([[True, True, False]])))
    assert np.all(weights[..., 2] == 0.0)
    np.testing.assert_allclose(weights[0, 1, :2], [0.5, 0.5], atol=1e-7)
    none = np_(masked_softmax(scores, np.zeros((1, 3), bool)))
    assert np.all(none == 0.0)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_padded_memory_gets_exactly_zero_weight(name):
    layer = make(name)
    query, value = random_inputs(seed=2)
    query_mask = np.array([[True, True, False], [True, True, True]])
    context, weights = layer([query, value], mask=[query_mask, VALUE_MASK], return_attention_scores=True)
    context, weights = np_(context), np_(weights)
    assert context.shape == (BATCH, TQ, DIM) and weights.shape == (BATCH, TQ, TV)
    assert np.all(weights[0, :, 3:] == 0.0)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
    # The context only mixes real memory, and padded query positions get a zero context.
    np.testing.assert_allclose(context[0, :2], weights[0, :2, :3] @ value[0, :3], atol=1e-5)
    assert np.all(context[0, 2] == 0.0)
    assert np.any(context[1, 2] != 0.0)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_fully_masked_row_gives_zeros_not_nan(name):
    layer = make(name)
    query, value = random_inputs(seed=3)
    value_mask = np.array([[False] * TV, [True, True, False, False, False]])
    context, weights = layer([query, value], mask=[None, value_mask], return_attention_scores=True)
    context, weights = np_(context), np_(weights)
    assert np.all(np.isfinite(context)) and np.all(np.isfinite(weights))
    assert np.all(weights[0] == 0.0) and np.all(context[0] == 0.0)
    np.testing.assert_allclose(weights[1].sum(-1), 1.0, atol=1e-6)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_float16_stays_finite_with_masks(name):
    layer = make(name, dtype="float16")
    query, value = random_inputs(seed=4)
    # Large queries push the dot scores to a few hundred: lowest float16 minus the max overflows.
    query, value = (query * 30.0).astype("float16"), value.astype("float16")
    value_mask = np.array([[True, True, False, False, False], [False] * TV])
    context, weights = layer([query, value], mask=[None, value_mask], return_attention_scores=True)
    assert keras.backend.standardize_dtype(context.dtype) == "float16"
    context, weights = np_(context).astype("float32"), np_(weights).astype("float32")
    assert np.all(np.isfinite(context)) and np.all(np.isfinite(weights))
    assert np.all(weights[0, :, 2:] == 0.0)
    np.testing.assert_allclose(weights[0].sum(-1), 1.0, atol=2e-3)
    assert np.all(weights[1] == 0.0) and np.all(context[1] == 0.0)


_PROPERTY_LAYERS = {}


def _built(name):
    """One layer per score mode for all hypothesis examples (building is the costly part)."""
    if name not in _PROPERTY_LAYERS:
        layer = make(name)
        layer.build([(BATCH, TQ, DIM), (BATCH, TV, DIM)])
        set_known_weights(layer)
        _PROPERTY_LAYERS[name] = layer
    return _PROPERTY_LAYERS[name]


@pytest.mark.parametrize("name", ["bahdanau", "dot", "general", "concat", "cosine"])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pad=st.integers(1, 4),
    junk_scale=st.floats(0.0, 1e3, allow_nan=False, allow_infinity=False),
    lengths=st.tuples(st.integers(1, TV), st.integers(1, TV)),
    seed=st.integers(0, 2**31 - 1),
)
def test_masked_junk_padding_never_changes_the_context(name, pad, junk_scale, lengths, seed):
    layer = _built(name)
    rng = np.random.default_rng(seed)
    query = rng.normal(size=(BATCH, TQ, DIM)).astype("float32")
    value = rng.normal(size=(BATCH, TV, DIM)).astype("float32")
    mask = np.arange(TV)[None, :] < np.array(lengths)[:, None]
    junk = (rng.normal(size=(BATCH, pad, DIM)) * junk_scale).astype("float32")
    padded_value = np.concatenate([value, junk], axis=1)
    padded_mask = np.concatenate([mask, np.zeros((BATCH, pad), bool)], axis=1)

    context, weights = layer([query, value], mask=[None, mask], return_attention_scores=True)
    padded_context, padded_weights = layer(
        [query, padded_value], mask=[None, padded_mask], return_attention_scores=True
    )
    np.testing.assert_allclose(np_(padded_context), np_(context), atol=1e-5)
    np.testing.assert_allclose(np_(padded_weights)[..., :TV], np_(weights), atol=1e-6)
    assert np.all(np_(padded_weights)[..., TV:] == 0.0)


# -- Shapes and inputs ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CONFIGS))
def test_single_step_query_equals_the_sequence_path(name):
    layer = make(name)
    query, value = random_inputs(seed=5, tq=1, value_dim=None)
    context, weights = layer([query[:, 0], value], mask=[None, VALUE_MASK], return_attention_scores=True)
    seq_context, seq_weights = layer([query, value], mask=[None, VALUE_MASK], return_attention_scores=True)
    assert tuple(context.shape) == (BATCH, DIM) and tuple(weights.shape) == (BATCH, TV)
    np.testing.assert_allclose(np_(context), np_(seq_context)[:, 0], atol=1e-6)
    np.testing.assert_allclose(np_(weights), np_(seq_weights)[:, 0], atol=1e-6)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_key_input_is_used_for_scoring_and_value_for_the_context(name):
    layer = make(name)
    query, key = random_inputs(seed=6)
    value = np.random.default_rng(8).normal(size=(BATCH, TV, 3)).astype("float32")
    context, weights = layer([query, value, key], mask=[None, VALUE_MASK], return_attention_scores=True)
    assert tuple(context.shape) == (BATCH, TQ, 3)
    # The weights are those of scoring against `key`, whatever the values are ...
    _, key_weights = layer([query, key, key], mask=[None, VALUE_MASK], return_attention_scores=True)
    np.testing.assert_allclose(np_(weights), np_(key_weights), atol=1e-6)
    # ... and the context mixes `value`.
    np.testing.assert_allclose(np_(context), np_(weights) @ value, atol=1e-5)
    # Another key changes the weights.
    _, other = layer([query, value, key[:, ::-1]], mask=[None, VALUE_MASK], return_attention_scores=True)
    assert not np.allclose(np_(other), np_(weights), atol=1e-4)


# -- Errors --------------------------------------------------------------------------------------
def test_bad_score_mode_names_received_and_allowed_values():
    with pytest.raises(ValueError, match=r"score_mode='foo'; expected one of 'dot', 'general', 'concat', 'cosine'"):
        LuongAttention("foo")


@pytest.mark.parametrize("name", ["bahdanau", "general", "dot"])
def test_wrong_rank_query_or_value_raises_at_build(name):
    query, value = random_inputs()
    with pytest.raises(ValueError, match=r"query shape=\(2, 3, 4, 1\)"):
        make(name).build([query.shape + (1,), value.shape])
    with pytest.raises(ValueError, match=r"value shape=\(2, 4\)"):
        make(name).build([query.shape, value.shape[::2]])
    with pytest.raises(ValueError, match=r"value shape=\(2, 4\)"):
        make(name)([query, value[:, 0]])


@pytest.mark.parametrize("mode", ["dot", "cosine"])
def test_dot_and_cosine_need_equal_query_and_key_sizes(mode):
    query, value = random_inputs(value_dim=6)
    with pytest.raises(ValueError, match=rf"score_mode='{mode}'.*query dim=4, key dim=6"):
        LuongAttention(mode)([query, value])
    # "general" compares different sizes.
    assert tuple(LuongAttention("general")([query, value]).shape) == (BATCH, TQ, 6)


def test_bahdanau_with_coverage_called_directly_raises():
    query, value = random_inputs()
    with pytest.raises(ValueError, match="use_coverage=True"):
        BahdanauAttention(4, use_coverage=True)([query, value])


def test_bad_units_raise():
    with pytest.raises(ValueError, match="units=0"):
        BahdanauAttention(0)
    with pytest.raises(ValueError, match="units=4 with score_mode='dot'"):
        LuongAttention("dot", units=4)


# -- Serialization -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CONFIGS))
def test_get_config_from_config_round_trip(name):
    cls, kwargs = CONFIGS[name]
    layer = make(name, name="attn")
    config = layer.get_config()
    for key, value in kwargs.items():
        assert config[key] == value
    clone = cls.from_config(config)
    assert clone.get_config() == config

    query, value = random_inputs(seed=9)
    expected = layer([query, value], mask=[None, VALUE_MASK])
    clone.build([query.shape, value.shape])
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(np_(clone([query, value], mask=[None, VALUE_MASK])), np_(expected))


def masked_attention_model(name):
    """Token ids -> Embedding(mask_zero=True) -> attention, masks passed by Keras itself."""
    query_ids = keras.Input((None,), dtype="int32")
    memory_ids = keras.Input((None,), dtype="int32")
    query = keras.layers.Embedding(20, DIM, mask_zero=True)(query_ids)
    memory = keras.layers.Embedding(20, DIM, mask_zero=True)(memory_ids)
    context, weights = make(name)([query, memory], return_attention_scores=True)
    return keras.Model([query_ids, memory_ids], [context, weights])


QUERY_IDS = np.array([[1, 2, 3], [4, 5, 0]], "int32")
MEMORY_IDS = np.array([[6, 7, 8, 0, 0], [9, 10, 11, 12, 13]], "int32")


@pytest.mark.parametrize("name", ONE_PER_SCORE)
def test_keras_file_round_trip(name, tmp_path):
    model = masked_attention_model(name)
    context, weights = model.predict([QUERY_IDS, MEMORY_IDS], verbose=0)
    # Keras passed the Embedding masks: padded memory gets no weight, padded queries no context.
    assert np.all(weights[0, :, 3:] == 0.0)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
    assert np.all(context[1, 2] == 0.0)

    path = tmp_path / "attention.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    loaded_context, loaded_weights = loaded.predict([QUERY_IDS, MEMORY_IDS], verbose=0)
    np.testing.assert_array_equal(loaded_context, context)
    np.testing.assert_array_equal(loaded_weights, weights)


# -- Training ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ONE_PER_SCORE)
def test_one_fit_step_changes_the_weights(name):
    query_in = keras.Input((TQ, DIM))
    memory_in = keras.Input((TV, DIM))
    layer = make(name)
    model = keras.Model([query_in, memory_in], layer([query_in, memory_in]))
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    query, value = random_inputs(seed=10)
    target = np.random.default_rng(11).normal(size=(BATCH, TQ, DIM)).astype("float32")
    before = [np_(w).copy() for w in layer.trainable_weights]
    assert before, "the layer should have trainable weights"
    history = model.fit([query, value], target, batch_size=BATCH, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    for old, new in zip(before, layer.trainable_weights):
        assert not np.array_equal(old, np_(new)), f"{new.path} did not change"
