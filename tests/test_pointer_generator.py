"""PointerGenerator (the copy switch) and the coverage loss: numbers by hand, stability, saving, search."""

import math

import numpy as np
import pytest

import keras
from keras import ops

from keras_attn_zoo.layers import PointerGenerator
from keras_attn_zoo.layers.attention_decoder import AttentionDecoder, coverage_loss
from keras_attn_zoo.models.seq2seq import EOS_ID, Seq2Seq

pytestmark = pytest.mark.backend_agnostic

V = 6


def np_(x):
    return ops.convert_to_numpy(x)


def gate_layer(bias, dims=(3, 2, 2)):
    """A layer whose p_gen is sigmoid(bias) whatever the features (zero kernel)."""
    layer = PointerGenerator(V)
    layer.build((None, V), (None, 2), (None, 2), (None, dims[0]), (None, dims[1]), (None, dims[2]))
    layer.gate.kernel.assign(np.zeros((sum(dims), 1), "float32"))
    layer.gate.bias.assign(np.array([bias], "float32"))
    return layer


def features(batch=1, steps=None):
    shape = (batch,) if steps is None else (batch, steps)
    return np.ones(shape + (3,), "float32"), np.ones(shape + (2,), "float32"), np.ones(shape + (2,), "float32")


def test_mixture_by_hand():
    # p_gen = sigmoid(0) = 0.5, P_vocab uniform (1/6), attention 0.75 / 0.25 on ids 4 and 5.
    layer = gate_layer(0.0)
    log_p = layer(np.zeros((1, V), "float32"), np.array([[0.75, 0.25]], "float32"), np.array([[4, 5]]), *features())
    expected = np.full(V, 0.5 / 6) + 0.5 * np.array([0, 0, 0, 0, 0.75, 0.25])
    np.testing.assert_allclose(np.exp(np_(log_p))[0], expected, rtol=1e-5)


def test_repeated_source_ids_add_up():
    layer = gate_layer(-30.0)  # p_gen ~ 1e-13: all copy
    log_p = layer(np.zeros((1, V), "float32"), np.array([[0.75, 0.25]], "float32"), np.array([[4, 4]]), *features())
    np.testing.assert_allclose(np.exp(np_(log_p))[0, 4], 1.0, rtol=1e-5)


def test_sequence_and_step_calls_agree_and_sum_to_one():
    rng = np.random.default_rng(0)
    layer = PointerGenerator(V)
    logits = rng.normal(size=(2, 3, V)).astype("float32")
    weights = rng.dirichlet(np.ones(4), size=(2, 3)).astype("float32")
    ids = np.array([[4, 5, 4, 0], [2, 3, 1, 5]])
    context, state, inputs = (rng.normal(size=(2, 3, d)).astype("float32") for d in (3, 2, 2))
    whole, gate = layer(logits, weights, ids, context, state, inputs, return_gate=True)
    np.testing.assert_allclose(np.exp(np_(whole)).sum(-1), 1.0, atol=1e-5)
    for t in range(3):
        step = layer(logits[:, t], weights[:, t], ids, context[:, t], state[:, t], inputs[:, t])
        np.testing.assert_allclose(np_(step), np_(whole)[:, t], atol=1e-5)
    assert np_(gate).shape == (2, 3) and np.all((np_(gate) > 0) & (np_(gate) < 1))


def test_log_space_keeps_tiny_vocabulary_probabilities():
    # The target id (1) is not in the source and its vocabulary probability is e^-200: a floored
    # log would give about log(1e-10) = -23; the log-space mixture gives log(0.5) - 200.
    layer = gate_layer(0.0)
    logits = np.zeros((1, V), "float32")
    logits[0, 1] = -200.0
    log_p = np_(layer(logits, np.array([[1.0, 0.0]], "float32"), np.array([[4, 5]]), *features()))
    vocab_log = -200.0 - math.log(5 + math.exp(-200.0))
    assert log_p[0, 1] == pytest.approx(math.log(0.5) + vocab_log, abs=1e-3)
    assert np.all(np.isfinite(log_p))


def test_gradients_finite_where_nothing_is_copied():
    # Masked positions have weight exactly 0 and id 0; extreme logits underflow P_vocab.
    layer = PointerGenerator(V)
    logits = keras.Variable(np.array([[[300.0, -300.0, 0.0, 0.0, 0.0, 0.0]]], "float32"))
    weights = keras.Variable(np.array([[[1.0, 0.0]]], "float32"))
    ids = np.array([[4, 0]])
    ctx, st, inp = features(1, 1)
    labels = np.array([[1]])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def loss():
        return loss_fn(labels, layer(logits, weights, ids, ctx, st, inp))

    grads = _gradients(loss, [logits, weights] + layer.trainable_weights)
    value = float(np_(loss()))
    assert math.isfinite(value) and value > 100  # -log P(1): tiny, but exact, not floored
    for grad in grads:
        assert np.all(np.isfinite(np_(grad)))


def _gradients(loss, variables):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            value = loss()
        return tape.gradient(value, [v.value for v in variables])
    if backend == "jax":
        import jax

        values = [v.value for v in variables]

        def pure(values):
            for variable, value in zip(variables, values):
                variable.assign(value)
            return loss()

        grads = jax.grad(lambda vals: pure(vals))(values)
        for variable, value in zip(variables, values):
            variable.assign(value)
        return grads
    pytest.skip("gradients checked on TensorFlow and JAX")


def test_cross_entropy_of_the_output_is_minus_log_p():
    layer = PointerGenerator(V)
    rng = np.random.default_rng(1)
    log_p = layer(rng.normal(size=(2, V)).astype("float32"), np.array([[0.6, 0.4], [1.0, 0.0]], "float32"),
                  np.array([[4, 5], [2, 0]]), *features(2))
    labels = np.array([4, 3])
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)(labels, log_p)
    np.testing.assert_allclose(np_(loss), -np_(log_p)[[0, 1], labels], atol=1e-5)


def test_config_round_trip():
    layer = PointerGenerator(V, name="copy")
    clone = PointerGenerator.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="vocab_size"):
        PointerGenerator(0)


def test_coverage_loss_by_hand():
    # Step 0 has no coverage yet (0); step 1: min([.5, .5], [1, 0]) sums to 0.5. Mean 0.25.
    alignments = np.array([[[1.0, 0.0], [0.5, 0.5]]], "float32")
    assert float(np_(coverage_loss(alignments))) == pytest.approx(0.25)
    assert float(np_(coverage_loss(alignments, np.array([[True, False]])))) == pytest.approx(0.0)
    # Attending to new positions only costs nothing.
    assert float(np_(coverage_loss(np.array([[[1.0, 0.0], [0.0, 1.0]]], "float32")))) == 0.0


def test_decoder_features_match_the_single_step_api():
    rng = np.random.default_rng(2)
    inputs = rng.normal(size=(2, 3, 4)).astype("float32")
    memory = rng.normal(size=(2, 5, 6)).astype("float32")
    for attention in ("bahdanau", "dot"):
        decoder = AttentionDecoder(6, attention=attention)
        outputs, alignments, feats = decoder(inputs, memory, return_alignments=True, return_features=True)
        bundle = decoder.precompute_memory(memory)
        state = decoder.get_initial_state(bundle)
        for t in range(3):
            output, state, weights, step = decoder.step(inputs[:, t], state, bundle, return_features=True)
            np.testing.assert_allclose(np_(step["context"]), np_(feats["context"])[:, t], atol=1e-5)
            np.testing.assert_allclose(np_(step["state"]), np_(feats["state"])[:, t], atol=1e-5)
            np.testing.assert_allclose(np_(weights), np_(alignments)[:, t], atol=1e-5)


def copy_model(**options):
    return Seq2Seq(30, 30, units=8, embedding_dim=6, share_embeddings=True, copy=True, seed=1, **options)


SOURCE = np.array([[11, 12, 13, 0], [20, 21, 22, 23]], "int32")


def test_a_model_that_only_copies_generates_source_tokens():
    model = copy_model()
    model.copy_layer.gate.bias.assign(np.array([-40.0], "float32"))  # p_gen ~ 0
    for beam_size in (1, 3):
        out = model.generate(SOURCE, beam_size=beam_size, max_length=6)
        for row in range(2):
            ids = out["token_ids"][row][: out["lengths"][row]]
            assert len(ids) and set(ids.tolist()) <= set(SOURCE[row][SOURCE[row] > 0].tolist())
    details = model.token_details(SOURCE, out["token_ids"][:, :3])
    np.testing.assert_allclose(details["p_gen"], 0.0, atol=1e-12)
    for row in range(2):
        for t in range(3):
            position = details["copied_from"][row, t]
            assert SOURCE[row, position] == out["token_ids"][row, t]


def test_token_details_mark_tokens_not_in_the_source():
    model = copy_model()
    details = model.token_details(SOURCE, np.array([[11, EOS_ID], [5, 23]], "int32"))
    np.testing.assert_array_equal(details["copied_from"], [[0, -1], [-1, 3]])
    assert Seq2Seq(30, 30, units=8, embedding_dim=6).token_details(SOURCE, np.ones((2, 2), "int32")) == {}


def test_copy_model_needs_one_vocabulary_and_attention():
    with pytest.raises(ValueError, match="shared vocabulary"):
        Seq2Seq(30, 31, units=8, embedding_dim=6, copy=True)
    with pytest.raises(ValueError, match="attention=None"):
        Seq2Seq(30, 30, units=8, embedding_dim=6, copy=True, attention=None)


def test_shared_embeddings_are_one_matrix():
    model = copy_model()
    assert model.source_embedding is model.target_embedding
    assert model.count_params() < Seq2Seq(30, 30, units=8, embedding_dim=6, copy=True).count_params()


def test_fit_logs_the_coverage_loss_and_saves(tmp_path):
    model = copy_model(coverage=True, coverage_loss_weight=1.0)
    model.compile()
    x = {"source_ids": SOURCE, "target_ids": np.array([[1, 11, 12], [1, 20, 0]], "int32")}
    y = np.array([[11, 12, 2], [20, 2, 0]], "int32")
    history = model.fit(x, y, epochs=2, verbose=0)
    assert "coverage_loss" in history.history and all(np.isfinite(history.history["coverage_loss"]))
    assert all(v >= 0 for v in history.history["coverage_loss"])
    path = tmp_path / "copy.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(np_(loaded(x)), np_(model(x)), atol=1e-5)
    assert loaded.copy and loaded.share_embeddings and loaded.coverage_loss_weight == 1.0
    plain = Seq2Seq(30, 30, units=8, embedding_dim=6)
    plain.compile()
    assert "coverage_loss" not in plain.fit(x, y, epochs=1, verbose=0).history
