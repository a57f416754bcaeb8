"""`keras_attn_zoo.layers.gru`: the written-out GRU step, and the GRU layer whose training call does
the input products of all steps at once, held equal to Keras' own in outputs, states and gradients."""

import numpy as np
import pytest

import keras

from keras_attn_zoo.layers.gru import GRU, gru_step

pytestmark = pytest.mark.backend_agnostic

UNITS, FEATURES, STEPS = 6, 5, 7
# Right padding (rows of 7, 4 and 1 real steps, one all padding) and a hole in the middle of a row.
MASK = np.array(
    [[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0], [1, 1, 0, 1, 1, 0, 0]],
    dtype=bool,
)


def np_(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def test_the_written_out_step_is_the_keras_cell():
    cell = keras.layers.GRUCell(UNITS)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, FEATURES)).astype("float32")
    h = rng.normal(size=(5, UNITS)).astype("float32")
    cell(x, [h])
    cell.bias.assign(rng.normal(size=cell.bias.shape).astype("float32"))  # both biases count
    expected, _ = cell(x, [h])
    projected = keras.ops.matmul(x, cell.kernel) + cell.bias[0]
    np.testing.assert_allclose(np_(gru_step(cell, projected, h)), np_(expected), atol=1e-6)


def _pair(go_backwards, bidirectional):
    """Keras' GRU and ours with the same weights (random biases too)."""
    rng = np.random.default_rng(3)

    def make(cls):
        layer = cls(UNITS, return_sequences=True, return_state=True, go_backwards=go_backwards)
        return keras.layers.Bidirectional(layer) if bidirectional else layer

    theirs, ours = make(keras.layers.GRU), make(GRU)
    theirs.build((None, STEPS, FEATURES))
    ours.build((None, STEPS, FEATURES))
    for a, b in zip(theirs.weights, ours.weights):
        value = rng.normal(size=a.shape).astype("float32") * 0.5
        a.assign(value)
        b.assign(value)
    return theirs, ours


def _states(layer, state):
    return [state] * (2 if isinstance(layer, keras.layers.Bidirectional) else 1)


def _outputs_and_gradients(layer, x, mask, state):
    """The layer's training call (outputs, states) and the gradients of a loss of all of them
    with respect to the input, the initial states and every weight."""
    backend = keras.backend.backend()

    def loss_of(outputs):
        return sum(keras.ops.sum(o * keras.ops.cos(3.0 * o)) for o in outputs)  # each value its own weight

    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function  # a graph, where `linear.matmul` takes its own gradient
        def run(x, state):
            with tf.GradientTape() as tape:
                tape.watch([x, state])
                outputs = layer(x, mask=mask, initial_state=_states(layer, state), training=True)
                value = loss_of(outputs)
            return outputs, tape.gradient(value, [x, state] + [w.value for w in layer.trainable_weights])

        outputs, grads = run(tf.constant(x), tf.constant(state))
        return [np_(o) for o in outputs], [np_(g) for g in grads]
    if backend == "jax":
        import jax

        def pure(values, x, state):
            outputs, _ = layer.stateless_call(
                values, [v.value for v in layer.non_trainable_variables], x, mask=mask, initial_state=_states(layer, state), training=True
            )
            return loss_of(outputs), outputs

        values = [w.value for w in layer.trainable_weights]
        (grads_w, grad_x, grad_state), outputs = jax.grad(pure, argnums=(0, 1, 2), has_aux=True)(values, x, state)
        return [np_(o) for o in outputs], [np_(grad_x), np_(grad_state)] + [np_(g) for g in grads_w]
    pytest.skip("gradients checked on TensorFlow and JAX")


@pytest.mark.parametrize("go_backwards, bidirectional", [(False, False), (True, False), (False, True)], ids=["forward", "go-backwards", "bidirectional"])
def test_training_call_gives_keras_outputs_states_and_gradients(go_backwards, bidirectional):
    theirs, ours = _pair(go_backwards, bidirectional)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(len(MASK), STEPS, FEATURES)).astype("float32")
    state = rng.normal(size=(len(MASK), UNITS)).astype("float32")  # not zeros: masked steps must keep it
    expected, expected_grads = _outputs_and_gradients(theirs, x, MASK, state)
    got, got_grads = _outputs_and_gradients(ours, x, MASK, state)
    assert len(got) == len(expected) and len(got_grads) == len(expected_grads)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, atol=1e-5)
    for g, e in zip(got_grads, expected_grads):
        np.testing.assert_allclose(g, e, atol=1e-4)


def test_the_setting_off_and_calls_that_do_not_train_run_keras_loop(monkeypatch):
    """Without training, with the setting off or with dropout inside the cell, the layer is Keras' (its
    loop calls the cell); a training call does not call the cell. With a mask, as the encoders call it
    (without one, Keras 3.15's JAX backend has a loop of its own that does not call the cell either)."""
    calls = []
    original = keras.layers.GRUCell.call

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(keras.layers.GRUCell, "call", counting)
    x = np.ones((2, 3, FEATURES), "float32")
    mask = np.array([[True, True, True], [True, False, False]])

    def cell_calls(layer, training):
        calls.clear()
        layer(x, mask=mask, training=training)
        return len(calls)

    layer = GRU(UNITS, return_sequences=True)
    layer.build((None, 3, FEATURES))
    assert cell_calls(layer, training=True) == 0
    assert cell_calls(layer, training=False) > 0
    layer.project_inputs_at_once = False
    assert cell_calls(layer, training=True) > 0
    with_dropout = GRU(UNITS, return_sequences=True, dropout=0.2)
    with_dropout.build((None, 3, FEATURES))
    assert cell_calls(with_dropout, training=True) > 0


def test_saved_and_loaded_as_itself(tmp_path):
    layer = GRU(UNITS, return_sequences=True)
    model = keras.Sequential([keras.Input((STEPS, FEATURES)), layer])
    model.save(tmp_path / "gru.keras")
    loaded = keras.saving.load_model(tmp_path / "gru.keras")
    assert type(loaded.layers[0]) is GRU
    x = np.random.default_rng(5).normal(size=(2, STEPS, FEATURES)).astype("float32")
    np.testing.assert_allclose(np_(loaded(x)), np_(model(x)), atol=1e-6)
