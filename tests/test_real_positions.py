"""Logits at the real target positions only (`keras_attn_zoo.layers.real_positions`), and the default metric."""

import keras
import numpy as np
import pytest

from keras_attn_zoo.layers import OutputProjection
from keras_attn_zoo.recipes import translation

VOCAB, UNITS, EMBED = 23, 8, 6
pytestmark = pytest.mark.backend_agnostic  # elsewhere than TensorFlow: the setting stays off, the metric runs

LENGTHS = np.array([7, 2, 0, 5, 7, 1])  # an empty row and a one-step row


def _batch(steps=9, seed=0):
    """Ids padded with 0 after each row's length (the decoder inputs and the labels share the mask)."""
    rng = np.random.default_rng(seed)
    mask = np.arange(steps)[None, :] < LENGTHS[:, None]
    source = rng.integers(4, VOCAB, (len(LENGTHS), 5)).astype("int32")
    target = np.where(mask, rng.integers(4, VOCAB, mask.shape), 0).astype("int32")
    labels = np.where(mask, rng.integers(4, VOCAB, mask.shape), 0).astype("int32")
    return {"source_ids": source, "target_ids": target}, labels, mask


def np_(x):
    return keras.ops.convert_to_numpy(x)


def _skip_unless_tensorflow():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("real positions only are TensorFlow's (shapes that change with the data)")


def test_at_real_positions_is_the_layer_at_real_positions_and_zeros_elsewhere():
    _skip_unless_tensorflow()
    from keras_attn_zoo.layers.real_positions import at_real_positions

    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(len(LENGTHS), 9, 4)).astype("float32")
    mask = np.arange(9)[None, :] < LENGTHS[:, None]
    layer = keras.layers.Dense(5)
    outputs = np_(at_real_positions(layer, inputs, mask))
    assert outputs.shape == (len(LENGTHS), 9, 5)
    np.testing.assert_allclose(outputs[mask], np_(layer(inputs))[mask], atol=1e-6)
    assert np.all(outputs[~mask] == 0.0)
    # A batch at least 80% real (a bucketed one) runs the layer everywhere: the same values at real positions.
    mostly_real = np.arange(9)[None, :] < np.array([9, 9, 9, 9, 9, 1])[:, None]
    outputs = np_(at_real_positions(layer, inputs, mostly_real))
    np.testing.assert_allclose(outputs, np_(layer(inputs)), atol=1e-6)


@pytest.mark.parametrize("tie_embeddings", [True, False])
def test_training_on_real_positions_only_gives_the_same_loss_and_gradients(tie_embeddings):
    """What `fit` computes (loss through Keras' masking, gradients of every weight) is the same
    with the logits computed at the real positions only, in a tf.function as `fit` runs it."""
    _skip_unless_tensorflow()
    import tensorflow as tf

    model = translation(
        source_vocab_size=VOCAB, target_vocab_size=VOCAB, units=UNITS, embedding_dim=EMBED, tie_embeddings=tie_embeddings,
        dropout=0.0,
    )
    model.compile()
    layer = model._logits_layer()
    assert layer.real_positions_only and isinstance(layer, OutputProjection) != tie_embeddings
    x, y, mask = _batch()

    def step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = model.compute_loss(x, y, logits, training=True)
        return logits, loss, tape.gradient(loss, model.trainable_variables)

    def run(real_only):
        layer.real_positions_only = real_only
        step_fn = tf.function(step)  # traced again for each setting
        graph = str(step_fn.get_concrete_function(x, y).graph.as_graph_def())
        logits, loss, gradients = step_fn(x, y)
        return np_(logits), float(loss), [np_(tf.convert_to_tensor(g)) for g in gradients], "ScatterNd" in graph

    logits, loss, gradients, scattered = run(True)
    dense_logits, dense_loss, dense_gradients, dense_scattered = run(False)
    assert scattered and not dense_scattered
    np.testing.assert_allclose(logits[mask], dense_logits[mask], atol=1e-5)
    assert np.all(logits[~mask] == 0.0)
    np.testing.assert_allclose(loss, dense_loss, rtol=1e-6)
    for g, d in zip(gradients, dense_gradients):
        np.testing.assert_allclose(g, d, atol=1e-6)
    # Only training calls: predictions keep every position's logits.
    layer.real_positions_only = True
    np.testing.assert_allclose(np_(model(x, training=False)), np_(model(x, training=False)), atol=0)
    assert not np.all(np_(model(x, training=False))[~mask] == 0.0)


def test_compile_sets_real_positions_only_where_shapes_may_vary():
    model = translation(source_vocab_size=VOCAB, target_vocab_size=VOCAB, units=UNITS, embedding_dim=EMBED)
    assert model._logits_layer().real_positions_only is False  # a bare layer computes everywhere
    model.compile()
    assert model._logits_layer().real_positions_only is (keras.backend.backend() == "tensorflow")
    model.compile(jit_compile=True)  # XLA needs static shapes
    assert model._logits_layer().real_positions_only is False


def test_the_default_accuracy_is_argmax_accuracy_over_real_tokens():
    model = translation(source_vocab_size=VOCAB, target_vocab_size=VOCAB, units=UNITS, embedding_dim=EMBED)
    model.compile()
    x, y, mask = _batch(seed=3)
    predicted = np_(model.predict(x, verbose=0)).argmax(-1)
    hits = mask & (np.arange(mask.shape[1])[None, :] % 2 == 0)  # the model's own argmax at every other real step
    y = np.where(hits, predicted, np.where(mask, (predicted + 1) % VOCAB, 0)).astype("int32")
    y[mask & (y == 0)] = 4  # a real label is never padding
    expected = np.mean((predicted == y)[mask])
    assert 0.4 < expected < 0.7
    results = model.evaluate(x, y, verbose=0, return_dict=True)
    np.testing.assert_allclose(results["accuracy"], expected, rtol=1e-6)
