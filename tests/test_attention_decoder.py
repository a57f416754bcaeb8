"""AttentionDecoder: every attention/placement/cell, the single-step API, bridges, coverage, the
Show-Attend-Tell options (context gate, mean-memory bridge, doubly stochastic loss), saving, training."""

import numpy as np
import pytest

import keras
from keras import ops

from keras_attn_zoo.layers import AttentionDecoder
from keras_attn_zoo.layers.attention_decoder import doubly_stochastic_loss

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


def run_steps(decoder, inputs, memory, memory_mask=None, initial_state=None, return_features=False):
    """Drive the single-step API over the whole target; returns outputs, weights, final state
    (and, with `return_features`, the step features stacked over time)."""
    bundle = decoder.precompute_memory(memory, memory_mask)
    state = decoder.get_initial_state(bundle, initial_state)
    outputs, weights, features = [], [], []
    for t in range(inputs.shape[1]):
        output, state, w, f = decoder.step(inputs[:, t], state, bundle, return_features=True)
        outputs.append(np_(output))
        weights.append(np_(w))
        features.append({key: np_(value) for key, value in f.items()})
    results = (np.stack(outputs, 1), np.stack(weights, 1), state)
    if return_features:
        results += ({key: np.stack([f[key] for f in features], 1) for key in features[0]},)
    return results


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
    "mean-memory-lstm-two-layers": {"attention": "bahdanau", "cell": "lstm", "num_layers": 2, "bridge": "mean_memory"},
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


# -- Show, Attend and Tell: the context gate ----------------------------------------------------
GATE_CONFIGS = {
    "bahdanau-placement": {"attention": "bahdanau"},
    "luong-input-feeding": {"attention": "general", "placement": "luong", "input_feeding": True},
    "luong-parallel": {"attention": "dot", "placement": "luong", "input_feeding": False},
    "lstm-two-layers": {"attention": "concat", "placement": "bahdanau", "cell": "lstm", "num_layers": 2},
}


@pytest.mark.parametrize("config_id", list(GATE_CONFIGS))
def test_gate_context_teacher_forcing_equals_stepping_and_scales_the_context(config_id):
    kwargs = GATE_CONFIGS[config_id]
    decoder = AttentionDecoder(UNITS, output_units=OUTPUT_UNITS, gate_context=True, **kwargs)
    inputs, memory, state = dense_inputs(seed=11)
    outputs, alignments, features = (
        decoder(inputs, memory, memory_mask=SOURCE_MASK, initial_state=state, return_alignments=True, return_features=True)
    )
    assert decoder.parallel == (config_id == "luong-parallel")
    assert set(features) == {"context", "state", "gate"} and tuple(features["gate"].shape) == (BATCH, T)
    step_outputs, step_weights, _, step_features = run_steps(decoder, inputs, memory, SOURCE_MASK, state, True)
    np.testing.assert_allclose(np_(outputs), step_outputs, atol=1e-5)
    np.testing.assert_allclose(np_(alignments), step_weights, atol=1e-5)
    for key in ("context", "state", "gate"):
        np.testing.assert_allclose(np_(features[key]), step_features[key], atol=1e-5)

    # β_t = σ(w·q_t + b), q_t the attention query: the previous top state (Bahdanau placement,
    # the bridged initial state at t = 0) or the current one (Luong placement).
    kernel, bias = (np_(w) for w in decoder.gate_layer.weights)
    tops = step_features["state"]
    if kwargs.get("placement", "bahdanau") == "bahdanau":
        first = np_(decoder.get_initial_state(memory, state)["cells"][-1][0])
        queries = np.concatenate([first[:, None], tops[:, :-1]], 1)
    else:
        queries = tops
    gate = 1.0 / (1.0 + np.exp(-(queries @ kernel + bias)[..., 0]))
    np.testing.assert_allclose(step_features["gate"], gate, atol=1e-5)
    # The context the decoder uses is β_t Σ_j α_tj m_j.
    np.testing.assert_allclose(step_features["context"], gate[..., None] * (step_weights @ memory), atol=1e-5)


@pytest.mark.parametrize("placement", ["bahdanau", "luong"])
def test_a_closed_gate_shuts_the_memory_out(placement):
    """With β = 0 no memory value reaches the outputs; with the gate open they do."""
    decoder = AttentionDecoder(UNITS, attention="general", placement=placement, gate_context=True)
    inputs, memory, state = dense_inputs(seed=12)
    other_memory = memory[:, ::-1] * 2.0
    decoder(inputs, memory, initial_state=state)
    kernel, _ = decoder.gate_layer.weights
    kernel.assign(np.zeros(kernel.shape, "float32"))
    for bias, same in ((-200.0, True), (0.0, False)):  # β = σ(-200) = 0, then β = 1/2
        decoder.gate_layer.bias.assign(np.array([bias], "float32"))
        outputs = np_(decoder(inputs, memory, initial_state=state))
        other = np_(decoder(inputs, other_memory, initial_state=state))
        assert np.allclose(outputs, other, atol=1e-6) == same


# -- Show, Attend and Tell: the mean-memory bridge ----------------------------------------------
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_bridge_mean_memory_is_tanh_of_a_projection_of_the_masked_mean(cell):
    # Memory (2, 3, 2): row 0 has two real positions and a padded one full of 100s.
    memory = np.array([[[1.0, 2.0], [3.0, -2.0], [100.0, 100.0]], [[0.0, 3.0], [3.0, 0.0], [-3.0, 6.0]]], "float32")
    memory_mask = np.array([[True, True, False], [True, True, True]])
    mean = np.array([[2.0, 0.0], [0.0, 3.0]], "float32")  # by hand: the padding is not counted
    inputs = np.ones((2, 3, EMBED), "float32")
    decoder = AttentionDecoder(UNITS, attention="bahdanau", cell=cell, num_layers=2, bridge="mean_memory")
    decoder(inputs, memory, memory_mask=memory_mask)
    bundle = decoder.precompute_memory(memory, memory_mask)
    cells = decoder.get_initial_state(bundle)["cells"]
    parts = 1 if cell == "gru" else 2
    assert len(cells) == 2 and all(len(layer) == parts for layer in cells)
    for i in range(2):
        for j in range(parts):
            kernel, bias = (np_(w) for w in decoder.bridge_layers[i * parts + j].weights)
            np.testing.assert_allclose(np_(cells[i][j]), np.tanh(mean @ kernel + bias), atol=1e-6)
    # The passed encoder state is ignored; so is what the padding holds.
    state = np.full((2, 10), 5.0, "float32")
    ignoring = decoder.get_initial_state(bundle, state)["cells"]
    np.testing.assert_array_equal(np_(ignoring[1][0]), np_(cells[1][0]))
    repadded = memory.copy()
    repadded[0, 2] = -7.0
    outputs = np_(decoder(inputs, memory, memory_mask=memory_mask, initial_state=state))
    np.testing.assert_allclose(np_(decoder(inputs, repadded, memory_mask=memory_mask)), outputs, atol=1e-6)


def test_bridge_mean_memory_of_a_fully_masked_row_is_finite():
    decoder = AttentionDecoder(4, attention="dot", bridge="mean_memory")
    memory = np.ones((2, 3, 4), "float32")
    decoder.build((2, 1, 3), memory.shape)
    bundle = decoder.precompute_memory(memory, np.array([[False] * 3, [True] * 3]))
    h = np_(decoder.get_initial_state(bundle)["cells"][0][0])
    kernel, bias = (np_(w) for w in decoder.bridge_layers[0].weights)
    np.testing.assert_allclose(h, np.tanh(np.stack([np.zeros(4), np.ones(4)]) @ kernel + bias), atol=1e-6)


# -- Show, Attend and Tell: the doubly stochastic attention loss -------------------------------
def test_doubly_stochastic_loss_by_hand():
    alignments = np.array(
        [
            # 3 steps x 3 positions; the last position is padding, the last step too.
            [[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.3, 0.7, 0.0]],
            # All real; each position gets 1 in total.
            [[0.2, 0.3, 0.5], [0.2, 0.3, 0.5], [0.6, 0.4, 0.0]],
        ],
        "float32",
    )
    mask = np.array([[True, True, False], [True, True, True]])
    memory_mask = np.array([[True, True, False], [True, True, True]])
    value = lambda *args, **kwargs: float(np_(doubly_stochastic_loss(alignments, *args, **kwargs)))
    # Row 0 sums to (1.5, 0.5) at its real positions over its real steps: 0.25 + 0.25; row 1: 0.
    assert value(mask, memory_mask) == pytest.approx(0.25)
    # Unmasked, row 0 sums to (1.8, 1.2, 0): 0.64 + 0.04 + 1.
    assert value() == pytest.approx(1.68 / 2)
    # τ = 0.5: row 0 (0.5 - 1.5)² + 0² = 1, row 1 3 x 0.25.
    assert value(mask, memory_mask, target=0.5) == pytest.approx((1.0 + 0.75) / 2)
    # Uniform attention, T = 2 steps over N = 4 positions: τ = T / N = 0.5 gives 0, τ = 1 gives N (1 - T/N)².
    uniform = np.full((1, 2, 4), 0.25, "float32")
    assert float(np_(doubly_stochastic_loss(uniform, target=0.5))) == pytest.approx(0.0)
    assert float(np_(doubly_stochastic_loss(uniform))) == pytest.approx(1.0)


def test_doubly_stochastic_loss_is_added_while_training_only():
    weight, target = 0.5, 0.75
    source = keras.Input((None,), dtype="int32")
    target_ids = keras.Input((None,), dtype="int32")
    unit_normal = keras.initializers.RandomNormal(stddev=1.0)
    memory = keras.layers.Embedding(VOCAB, UNITS, embeddings_initializer=unit_normal, mask_zero=True)(source)
    embedded = keras.layers.Embedding(VOCAB, EMBED, mask_zero=True)(target_ids)
    decoder = AttentionDecoder(
        UNITS, attention="general", doubly_stochastic_loss_weight=weight, doubly_stochastic_target=target
    )
    outputs, alignments = decoder(embedded, memory, return_alignments=True)
    model = keras.Model([source, target_ids], keras.layers.Dense(VOCAB)(outputs))
    probe = keras.Model([source, target_ids], alignments)
    x = [SOURCE_IDS, TARGET_IDS]
    expected = weight * float(np_(doubly_stochastic_loss(probe(x), TARGET_MASK, SOURCE_MASK, target)))
    assert expected > 0.01

    # fit (a learning rate of 0 leaves the weights as they are) reports the cross-entropy, which
    # evaluate gives on its own, plus λ times the loss of the alignments.
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cross_entropy = model.evaluate(x, TARGET_IDS, batch_size=BATCH, verbose=0)
    trained = model.fit(x, TARGET_IDS, batch_size=BATCH, epochs=1, verbose=0).history["loss"][0]
    assert trained - cross_entropy == pytest.approx(expected, rel=1e-4)

    model(x, training=True)
    assert len(model.losses) == 1 and float(np_(model.losses[0])) == pytest.approx(expected, rel=1e-5)
    model(x, training=False)
    assert model.losses == []


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
        scale=True, seed=3, gate_context=True, doubly_stochastic_loss_weight=0.5, doubly_stochastic_target=2.0,
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
        {"attention": "bahdanau", "cell": "lstm", "gate_context": True, "bridge": "mean_memory",
         "doubly_stochastic_loss_weight": 1.0},
    ],
    ids=["bahdanau-coverage", "luong-lstm-2", "show-attend-tell"],
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
        ({"attention": None, "gate_context": True}, r"gate_context=True with attention=None"),
        ({"attention": None, "doubly_stochastic_loss_weight": 1.0}, r"doubly_stochastic_loss_weight with attention=None"),
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


# -- Packed rows: each row over its real steps only (TensorFlow, `pack_rows`) ----------------------
PACK_LENGTHS = np.array([9, 3, 0, 6, 1, 9, 4, 2])  # an empty row, ties, a one-step row


@pytest.mark.parametrize("config_id", list(STEP_CONFIGS) + ["gate-coverage"])
@pytest.mark.parametrize("steps", [9, 12, 3])  # as long as the longest row; padded past it; fewer than the spans
def test_packed_rows_give_the_dense_outputs_and_gradients_at_real_steps(config_id, steps):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("pack_rows is TensorFlow's (shapes that change with the data)")
    import tensorflow as tf

    kwargs = STEP_CONFIGS.get(config_id, {"attention": "bahdanau", "coverage": True, "gate_context": True})
    rng = np.random.default_rng(steps)
    batch = len(PACK_LENGTHS)
    lengths = np.minimum(PACK_LENGTHS, steps)
    mask = np.arange(steps)[None, :] < lengths[:, None]
    inputs = tf.constant(rng.normal(size=(batch, steps, EMBED)).astype("float32"))
    memory = tf.constant(rng.normal(size=(batch, TV, UNITS)).astype("float32"))
    memory_mask = np.arange(TV)[None, :] < rng.integers(1, TV + 1, batch)[:, None]
    state = tf.constant(rng.normal(size=(batch, 10)).astype("float32"))
    weights = rng.normal(size=(batch, steps, OUTPUT_UNITS)).astype("float32")
    decoder = AttentionDecoder(UNITS, output_units=OUTPUT_UNITS, **kwargs)
    decoder(inputs, memory, memory_mask=memory_mask, initial_state=state, mask=mask)

    def run(pack):
        decoder.pack_rows = pack
        with tf.GradientTape() as tape:
            tape.watch([inputs, memory])
            outputs, alignments, features = decoder(
                inputs, memory, memory_mask=memory_mask, initial_state=state, mask=mask, training=True,
                return_alignments=True, return_features=True,
            )
            loss = tf.reduce_sum(tf.where(mask[..., None], outputs * weights, 0.0))
        gradients = tape.gradient(loss, [inputs, memory] + decoder.trainable_variables)
        return [np_(outputs), np_(alignments), np_(features["context"]), np_(features["state"])], gradients

    dense, dense_gradients = run(False)
    packed, packed_gradients = run(True)
    decoder.pack_rows = True  # only training packs: other calls give the dense loop's outputs, padding too
    np.testing.assert_array_equal(np_(decoder(inputs, memory, memory_mask=memory_mask, initial_state=state, mask=mask)), dense[0])
    for d, p in zip(dense, packed):
        np.testing.assert_allclose(p[mask], d[mask], atol=1e-5)
    if not decoder.parallel:  # padding: zeros out of the loop (the parallel placement attends after it)
        from_loop = packed if decoder.feeds_output else packed[1:]  # else the readout runs after the loop
        assert all(np.all(p[~mask] == 0.0) for p in from_loop)
    for d, p in zip(dense_gradients, packed_gradients):
        assert (d is None) == (p is None)  # the memory of a decoder without attention gets none
        if d is not None:
            np.testing.assert_allclose(np_(tf.convert_to_tensor(p)), np_(tf.convert_to_tensor(d)), atol=1e-4)


def test_the_zoo_models_pack_rows_where_shapes_may_vary():
    from keras_attn_zoo.recipes import translation

    model = translation(source_vocab_size=VOCAB, target_vocab_size=VOCAB, units=UNITS, embedding_dim=EMBED)
    assert model.decoder.pack_rows is False  # a bare layer runs the dense loop
    model.compile()
    assert model.decoder.pack_rows is (keras.backend.backend() == "tensorflow")
    model.compile(jit_compile=True)  # XLA needs static shapes
    assert model.decoder.pack_rows is False


# -- The training loop's products against transposed copies (TensorFlow, `layers/linear.py`) -------
@pytest.mark.parametrize("config_id", ["bahdanau-placement", "luong-input-feeding", "two-layers", "coverage", "lstm", "no-attention"])
@pytest.mark.parametrize("pack", [False, True])
def test_training_gradients_through_transposed_copies_equal_tensorflows_own(config_id, pack):
    """In a tf.function (where `linear.matmul` takes its own gradient), a training call gives the
    outputs and the gradients of TensorFlow's own products, inside the while loop, the step run
    before it, and `scan_real_rows`' cond alike."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the transposed copies are TensorFlow's (other backends use keras.ops.matmul)")
    import tensorflow as tf

    rng = np.random.default_rng(1)
    batch, steps = len(PACK_LENGTHS), 9
    mask = tf.constant(np.arange(steps)[None, :] < PACK_LENGTHS[:, None])
    inputs = tf.constant(rng.normal(size=(batch, steps, EMBED)).astype("float32"))
    memory = tf.constant(rng.normal(size=(batch, TV, UNITS)).astype("float32"))
    state = tf.constant(rng.normal(size=(batch, 10)).astype("float32"))
    decoder = AttentionDecoder(UNITS, output_units=OUTPUT_UNITS, **STEP_CONFIGS[config_id])
    decoder(inputs, memory, initial_state=state, mask=mask)
    decoder.pack_rows = pack

    def run():
        @tf.function
        def gradients(inputs, memory):
            with tf.GradientTape() as tape:
                outputs = decoder(inputs, memory, initial_state=state, mask=mask, training=True)
                loss = tf.reduce_sum(tf.where(mask[..., None], outputs * outputs, 0.0))
            return outputs, tape.gradient(loss, [inputs, memory] + decoder.trainable_variables)

        graph = gradients.get_concrete_function(inputs, memory).graph.as_graph_def()
        copies = "AttnZooMatMulWithCopy" in str(graph)
        outputs, grads = gradients(inputs, memory)
        return np_(outputs), [None if g is None else np_(tf.convert_to_tensor(g)) for g in grads], copies

    fast, fast_gradients, used = run()
    decoder.transposed_copies = False  # TensorFlow's own products and gradients
    own, own_gradients, used_own = run()
    assert used and not used_own
    np.testing.assert_allclose(fast, own, atol=1e-6)
    for f, o in zip(fast_gradients, own_gradients):
        assert (f is None) == (o is None)
        if f is not None:
            np.testing.assert_allclose(f, o, atol=1e-5)


@pytest.mark.parametrize("attention", ["bahdanau", "concat", "general"])
def test_jax_recomputes_the_loop_scores_in_the_backward_pass_with_the_same_gradients(attention, monkeypatch):
    """On JAX the decoder loop's scores run under `jax.checkpoint` (base_attention._recomputed_in_backward):
    the gradients of every weight are those of the plain scan, and the compiled gradient needs
    less scratch memory where the score has (batch, Tv, units) intermediates (the additive ones:
    Bahdanau, concat), no more where it has none (general)."""
    if keras.backend.backend() != "jax":
        pytest.skip("the recompute is JAX's; other backends call the score as it is")
    import jax

    from keras_attn_zoo.layers import base_attention

    inputs, memory, state = dense_inputs(seed=3)
    inputs, memory = np.tile(inputs, (8, 4, 1)), np.tile(memory, (8, 6, 4))  # 16 rows, 16 steps, Tv 30, D 32
    decoder = AttentionDecoder(32, attention=attention, placement="bahdanau" if attention == "bahdanau" else "luong")
    decoder(inputs, memory)
    weights = [w.value for w in decoder.trainable_weights]

    def loss(values):
        fixed = [v.value for v in decoder.non_trainable_variables]
        outputs, _ = decoder.stateless_call(values, fixed, inputs, memory, training=True)
        return ops.sum(ops.square(outputs))

    def compiled_and_gradients():
        grad = jax.jit(jax.grad(loss))
        return grad.lower(weights).compile(), grad(weights)

    recomputed, grads = compiled_and_gradients()
    monkeypatch.setattr(base_attention, "_recomputed_in_backward", lambda score: score)
    stored, reference = compiled_and_gradients()
    for g, r in zip(grads, reference):  # equal up to float32 rounding (XLA may fuse the recompute differently)
        np.testing.assert_allclose(np_(g), np_(r), rtol=1e-4, atol=1e-5 * np.abs(np_(r)).max())
    scratch, scratch_stored = (c.memory_analysis().temp_size_in_bytes for c in (recomputed, stored))
    assert scratch < scratch_stored if attention in ("bahdanau", "concat") else scratch <= scratch_stored
