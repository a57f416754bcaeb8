"""AttentionDecoder: every attention/placement/cell, the single-step API, bridges, coverage, saving, training."""

import numpy as np
import pytest

import keras
from keras import ops

from keras_attn_zoo.layers import AttentionDecoder

pytestmark = pytest.mark.backend_agnostic

VOCAB, EMBED, UNITS, OUTPUT_UNITS = 20, 6, 8, 5
BATCH, T, TV = 2, 4, 5

# Token ids, 0 is padding: source row 0 has 3 real tokens, target row 1 has 2.
SOURCE_IDS = np.array([[3, 4, 5, 0, 0], [6, 7, 8, 9, 10]], "int32")
TARGET_IDS = np.array([[1, 2, 3, 4], [5, 6, 0, 0]], "int32")
SOURCE_MASK = SOURCE_IDS != 0
TARGET_MASK = TARGET_IDS != 0


def np_(x):
    return ops.convert_to_numpy(x)


def dense_inputs(seed=0, state_dim=10):
    """Embedded decoder inputs, memory (size UNITS, so dot and cosine apply), an encoder state."""
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(BATCH, T, EMBED)).astype("float32")
    memory = rng.normal(size=(BATCH, TV, UNITS)).astype("float32")
    state = rng.normal(size=(BATCH, state_dim)).astype("float32")
    return inputs, memory, state


def run_steps(decoder, inputs, memory, memory_mask=None, initial_state=None):
    """Drive the single-step API over the whole target; returns outputs, weights, final state."""
    bundle = decoder.precompute_memory(memory, memory_mask)
    state = decoder.get_initial_state(bundle, initial_state)
    outputs, weights = [], []
    for t in range(inputs.shape[1]):
        output, state, w = decoder.step(inputs[:, t], state, bundle)
        outputs.append(np_(output))
        weights.append(np_(w))
    return np.stack(outputs, 1), np.stack(weights, 1), state


# -- Every attention x placement x cell in a masked functional model ----------------------------
@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("placement", ["bahdanau", "luong"])
@pytest.mark.parametrize("attention", ["bahdanau", "dot", "general", "concat", "cosine"])
def test_functional_model_shapes_and_masked_alignments(attention, placement, cell):
    source = keras.Input((None,), dtype="int32")
    target = keras.Input((None,), dtype="int32")
    memory = keras.layers.Embedding(VOCAB, UNITS, mask_zero=True)(source)
    embedded = keras.layers.Embedding(VOCAB, EMBED, mask_zero=True)(target)
    decoder = AttentionDecoder(
        UNITS, attention=attention, placement=placement, cell=cell, output_units=OUTPUT_UNITS, attention_units=4
    )
    outputs, alignments = decoder(embedded, memory, return_alignments=True)
    assert tuple(outputs.shape) == (None, None, OUTPUT_UNITS)
    model = keras.Model([source, target], [outputs, alignments])

    outputs, alignments = (np_(x) for x in model([SOURCE_IDS, TARGET_IDS], training=False))
    assert outputs.shape == (BATCH, T, OUTPUT_UNITS)
    assert alignments.shape == (BATCH, T, TV)
    assert np.all(np.isfinite(outputs))
    # Real decoder steps: a distribution over the real memory ...
    np.testing.assert_allclose(alignments.sum(-1)[TARGET_MASK], 1.0, atol=1e-5)
    # ... padded memory gets no weight, padded decoder steps no alignment at all.
    assert np.all(alignments[0, :, 3:] == 0.0)
    assert np.all(alignments[1, 2:] == 0.0)


def test_outputs_carry_the_decoder_mask_into_the_loss():
    """Padded target steps do not count in the loss: the Embedding mask flows through the decoder."""
    source = keras.Input((None,), dtype="int32")
    target = keras.Input((None,), dtype="int32")
    memory = keras.layers.Embedding(VOCAB, UNITS, mask_zero=True)(source)
    embedded = keras.layers.Embedding(VOCAB, EMBED, mask_zero=True)(target)
    logits = keras.layers.Dense(VOCAB)(AttentionDecoder(UNITS)(embedded, memory))
    model = keras.Model([source, target], logits)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    labels = np.array([[2, 3, 4, 5], [6, 7, 0, 0]], "int32")
    other_labels = labels.copy()
    other_labels[1, 2:] = [11, 12]  # only the padded steps change
    loss = model.evaluate([SOURCE_IDS, TARGET_IDS], labels, batch_size=BATCH, verbose=0)
    other = model.evaluate([SOURCE_IDS, TARGET_IDS], other_labels, batch_size=BATCH, verbose=0)
    assert np.isfinite(loss)
    assert other == pytest.approx(loss, rel=1e-6)


# -- Teacher forcing equals the single-step API --------------------------------------------------
STEP_CONFIGS = {
    "bahdanau-placement": {"attention": "bahdanau"},
    "luong-input-feeding": {"attention": "general", "placement": "luong", "input_feeding": True},
    "luong-parallel": {"attention": "dot", "placement": "luong", "input_feeding": False},
    "coverage": {"attention": "bahdanau", "coverage": True},
    "two-layers": {"attention": "concat", "num_layers": 2},
    "lstm": {"attention": "bahdanau", "cell": "lstm"},
    "lstm-luong-two-layers": {"attention": "cosine", "cell": "lstm", "num_layers": 2},
    "no-attention": {"attention": None},
}


@pytest.mark.parametrize("config_id", list(STEP_CONFIGS))
def test_teacher_forcing_equals_stepping(config_id):
    kwargs = STEP_CONFIGS[config_id]
    decoder = AttentionDecoder(UNITS, output_units=OUTPUT_UNITS, **kwargs)
    assert decoder.parallel == (config_id in ("luong-parallel", "no-attention"))
    inputs, memory, state = dense_inputs(seed=1)
    outputs, alignments = decoder(
        inputs, memory, memory_mask=SOURCE_MASK, initial_state=state, return_alignments=True
    )
    step_outputs, step_weights, _ = run_steps(decoder, inputs, memory, SOURCE_MASK, state)
    assert step_outputs.shape == (BATCH, T, OUTPUT_UNITS)
    np.testing.assert_allclose(np_(outputs), step_outputs, atol=1e-5)
    np.testing.assert_allclose(np_(alignments), step_weights, atol=1e-5)
    if kwargs["attention"] is None:
        assert np.all(step_weights == 0.0)
    else:
        np.testing.assert_allclose(step_weights.sum(-1), 1.0, atol=1e-5)
        assert np.all(step_weights[0, :, 3:] == 0.0)


def test_step_depends_on_the_memory():
    """Guards the equality above from passing because attention were ignored."""
    decoder = AttentionDecoder(UNITS, attention="general", output_units=OUTPUT_UNITS)
    inputs, memory, state = dense_inputs(seed=2)
    outputs = np_(decoder(inputs, memory, initial_state=state))
    other = np_(decoder(inputs, memory[:, ::-1] * 2.0, initial_state=state))
    assert not np.allclose(outputs, other, atol=1e-4)


# -- Bridges -------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_bridge_none_ignores_the_initial_state(cell):
    decoder = AttentionDecoder(UNITS, cell=cell, bridge="none")
    inputs, memory, state = dense_inputs(seed=3)
    with_state = np_(decoder(inputs, memory, memory_mask=SOURCE_MASK, initial_state=state))
    without = np_(decoder(inputs, memory, memory_mask=SOURCE_MASK))
    np.testing.assert_array_equal(with_state, without)
    cells = decoder.get_initial_state(memory, state)["cells"]
    assert all(np.all(np_(part) == 0.0) for layer in cells for part in layer)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_bridge_dense_is_tanh_of_a_projection_per_layer_and_part(cell):
    decoder = AttentionDecoder(UNITS, cell=cell, num_layers=2, bridge="dense")
    inputs, memory, state = dense_inputs(seed=4, state_dim=10)
    with_state = np_(decoder(inputs, memory, memory_mask=SOURCE_MASK, initial_state=state))
    without = np_(decoder(inputs, memory, memory_mask=SOURCE_MASK))
    assert not np.allclose(with_state, without, atol=1e-4)

    cells = decoder.get_initial_state(memory, state)["cells"]
    parts = 1 if cell == "gru" else 2
    assert len(cells) == 2 and all(len(layer) == parts for layer in cells)
    for i in range(2):
        for j in range(parts):
            kernel, bias = (np_(w) for w in decoder.bridge_layers[i * parts + j].weights)
            np.testing.assert_allclose(np_(cells[i][j]), np.tanh(state @ kernel + bias), atol=1e-6)


def test_bridge_copy_uses_the_state_as_is():
    inputs, memory, state = dense_inputs(seed=5, state_dim=UNITS)
    gru = AttentionDecoder(UNITS, cell="gru", bridge="copy")
    np.testing.assert_array_equal(np_(gru.get_initial_state(memory, state)["cells"][0][0]), state)
    lstm = AttentionDecoder(UNITS, cell="lstm", bridge="copy")
    h, c = state, state[::-1] * 3.0
    lstm_cells = lstm.get_initial_state(memory, [h, c])["cells"][0]
    np.testing.assert_array_equal(np_(lstm_cells[0]), h)
    np.testing.assert_array_equal(np_(lstm_cells[1]), c)
    # The copied state is the one the decoder starts from.
    outputs = np_(gru(inputs, memory, memory_mask=SOURCE_MASK, initial_state=state))
    step_outputs, _, _ = run_steps(gru, inputs, memory, SOURCE_MASK, state)
    np.testing.assert_allclose(outputs, step_outputs, atol=1e-5)
    assert not np.allclose(outputs, np_(gru(inputs, memory, memory_mask=SOURCE_MASK)), atol=1e-4)


def test_bridge_copy_with_the_wrong_size_raises():
    inputs, memory, state = dense_inputs(seed=6, state_dim=UNITS + 2)
    decoder = AttentionDecoder(UNITS, bridge="copy")
    with pytest.raises(ValueError, match=r"bridge='copy'.*units=8.*shape=\(2, 10\)"):
        decoder(inputs, memory, initial_state=state)


# -- Coverage ------------------------------------------------------------------------------------
def test_coverage_is_the_running_sum_of_the_weights():
    decoder = AttentionDecoder(UNITS, attention="bahdanau", coverage=True)
    inputs, memory, _ = dense_inputs(seed=7)
    decoder.build(inputs.shape, memory.shape)
    bundle = decoder.precompute_memory(memory, SOURCE_MASK)
    state = decoder.get_initial_state(bundle)
    assert np.all(np_(state["coverage"]) == 0.0)
    total = np.zeros((BATCH, TV), "float32")
    for _ in range(3):
        _, state, weights = decoder.step(inputs[:, 0], state, bundle)
        total += np_(weights)
        np.testing.assert_allclose(np_(state["coverage"]), total, atol=1e-6)
    np.testing.assert_allclose(total.sum(-1), 3.0, atol=1e-5)
    assert np.all(total[0, 3:] == 0.0)


# -- Dropout -------------------------------------------------------------------------------------
def test_dropout_trains_and_inference_is_deterministic():
    source = keras.Input((None,), dtype="int32")
    target = keras.Input((None,), dtype="int32")
    # Unit-scale memory, so that the attention weights are far from uniform and get a gradient.
    unit_normal = keras.initializers.RandomNormal(stddev=1.0)
    memory = keras.layers.Embedding(VOCAB, UNITS, embeddings_initializer=unit_normal, mask_zero=True)(source)
    embedded = keras.layers.Embedding(VOCAB, EMBED, mask_zero=True)(target)
    decoder = AttentionDecoder(UNITS, attention="general", num_layers=2, dropout=0.4, seed=3)
    model = keras.Model([source, target], keras.layers.Dense(VOCAB)(decoder(embedded, memory)))

    first = np_(model([SOURCE_IDS, TARGET_IDS], training=False))
    np.testing.assert_array_equal(np_(model([SOURCE_IDS, TARGET_IDS], training=False)), first)
    assert not np.allclose(np_(model([SOURCE_IDS, TARGET_IDS], training=True)), first, atol=1e-4)

    model.compile(optimizer=keras.optimizers.SGD(0.5), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [np_(w).copy() for w in decoder.trainable_weights]
    history = model.fit([SOURCE_IDS, TARGET_IDS], TARGET_IDS, batch_size=BATCH, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    changed = [not np.array_equal(old, np_(new)) for old, new in zip(before, decoder.trainable_weights)]
    assert all(changed), [w.path for w, c in zip(decoder.trainable_weights, changed) if not c]


def test_input_and_output_dropout_draw_different_masks_with_one_seed():
    # With one seed for both layers, equal shapes gave identical masks (issue 8).
    decoder = AttentionDecoder(8, attention="dot", dropout=0.5, seed=11)
    ones = np.ones((4, 6, 8), "float32")
    first = np_(decoder.input_dropout(ones, training=True)) == 0
    second = np_(decoder.output_dropout(ones, training=True)) == 0
    assert 0.2 < first.mean() < 0.8 and 0.2 < second.mean() < 0.8
    assert (first != second).mean() > 0.2
    # Still reproducible: the same seed gives the same masks.
    again = AttentionDecoder(8, attention="dot", dropout=0.5, seed=11)
    np.testing.assert_array_equal(np_(again.input_dropout(ones, training=True)) == 0, first)


# -- Serialization -------------------------------------------------------------------------------
def test_get_config_from_config_round_trip():
    kwargs = dict(
        attention="concat", placement="bahdanau", cell="lstm", num_layers=2, dropout=0.1, input_feeding=False,
        attention_units=4, output_units=OUTPUT_UNITS, bridge="dense", coverage=False, normalize=False,
        scale=True, seed=3,
    )
    decoder = AttentionDecoder(UNITS, name="decoder", **kwargs)
    config = decoder.get_config()
    assert {key: config[key] for key in kwargs} == kwargs and config["units"] == UNITS
    clone = AttentionDecoder.from_config(config)
    assert clone.get_config() == config

    inputs, memory, state = dense_inputs(seed=8)
    expected = np_(decoder(inputs, memory, memory_mask=SOURCE_MASK, initial_state=state))
    clone(inputs, memory, memory_mask=SOURCE_MASK, initial_state=state)
    clone.set_weights(decoder.get_weights())
    np.testing.assert_array_equal(np_(clone(inputs, memory, memory_mask=SOURCE_MASK, initial_state=state)), expected)


def seq2seq(decoder_kwargs, vocab=VOCAB, units=UNITS):
    """Embedding + GRU encoder, the decoder started from the encoder state, logits over `vocab`."""
    source = keras.Input((None,), dtype="int32")
    target = keras.Input((None,), dtype="int32")
    embedded_source = keras.layers.Embedding(vocab, EMBED, mask_zero=True)(source)
    memory, state = keras.layers.GRU(units, return_sequences=True, return_state=True)(embedded_source)
    embedded = keras.layers.Embedding(vocab, EMBED, mask_zero=True)(target)
    outputs = AttentionDecoder(units, **decoder_kwargs)(embedded, memory, initial_state=state)
    return keras.Model([source, target], keras.layers.Dense(vocab)(outputs))


@pytest.mark.parametrize(
    "decoder_kwargs",
    [
        {"attention": "bahdanau", "coverage": True, "normalize": True},
        {"attention": "general", "cell": "lstm", "num_layers": 2, "scale": True},
    ],
    ids=["bahdanau-coverage", "luong-lstm-2"],
)
def test_keras_file_round_trip(decoder_kwargs, tmp_path):
    model = seq2seq(decoder_kwargs)
    expected = model.predict([SOURCE_IDS, TARGET_IDS], verbose=0)
    path = tmp_path / "decoder.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(loaded.predict([SOURCE_IDS, TARGET_IDS], verbose=0), expected)
    assert loaded.layers[-2].get_config() == model.layers[-2].get_config()


# -- Training ------------------------------------------------------------------------------------
def test_copy_task_loss_goes_down():
    vocab, length, start = 12, 4, 1
    rng = np.random.default_rng(0)
    source = rng.integers(2, vocab, size=(32, length)).astype("int32")
    decoder_in = np.concatenate([np.full((32, 1), start, "int32"), source[:, :-1]], axis=1)
    model = seq2seq({"attention": "bahdanau"}, vocab=vocab, units=16)
    model.compile(
        optimizer=keras.optimizers.Adam(0.02), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    history = model.fit([source, decoder_in], source, batch_size=16, epochs=15, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.8 * losses[0], losses


# -- Arguments -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"attention": "foo"}, r"attention='foo'; expected one of 'bahdanau', 'dot'"),
        ({"cell": "rnn"}, r"cell='rnn'; expected one of 'gru', 'lstm'"),
        ({"bridge": "x"}, r"bridge='x'; expected one of 'none', 'dense', 'copy'"),
        ({"placement": "middle"}, r"placement='middle'"),
        ({"attention": "dot", "coverage": True}, r"coverage=True with attention='dot'"),
        ({"num_layers": 0}, r"num_layers=0"),
        ({"dropout": 1.0}, r"dropout=1.0"),
    ],
)
def test_invalid_arguments_name_the_received_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AttentionDecoder(UNITS, **kwargs)


@pytest.mark.parametrize("attention", ["bahdanau", "concat", "general", None])
def test_trains_under_xla(attention):
    """jit_compile=True (Keras' default on GPUs) compiles the decoder loop and its gradient."""
    from keras_attn_zoo.models.seq2seq import Seq2Seq

    model = Seq2Seq(30, 40, units=8, embedding_dim=4, attention=attention)
    model.compile(
        "adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0), jit_compile=True
    )
    rng = np.random.default_rng(0)
    data = {"source_ids": rng.integers(3, 30, (4, 7)), "target_ids": rng.integers(3, 40, (4, 6))}
    before = [w.copy() for w in model.get_weights()]
    loss = model.fit(data, data["target_ids"], epochs=1, verbose=0).history["loss"][0]
    assert np.isfinite(loss)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
