"""`Seq2Seq` as a whole: what it generates, where its search defaults come from, how the encoder starts the decoder."""

import numpy as np
import pytest
from keras import ops

import keras
from keras_attn_zoo.models.seq2seq import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Seq2Seq
from keras_attn_zoo.recipes import translation

pytestmark = pytest.mark.backend_agnostic

SOURCES = np.array([[5, 6, 7, 8, 9, 10], [11, 12, 13, 0, 0, 0]], "int32")


def small(**options):
    return translation(source_vocab_size=30, target_vocab_size=30, units=8, embedding_dim=8, **options)


def biased(model, **bias_by_id):
    """Add a large bias to some output logits (the tied embedding's output bias)."""
    bias = ops.convert_to_numpy(model.target_embedding.output_bias).copy()
    for token_id, value in bias_by_id.items():
        bias[int(token_id.lstrip("_"))] += value
    model.target_embedding.output_bias.assign(bias)
    return model


@pytest.mark.parametrize("beam_size", [1, 3])
def test_pad_bos_and_on_request_unk_are_never_generated(beam_size):
    # pad, bos and unk are by far the likeliest tokens at every step; eos is unlikely.
    model = biased(small(), **{f"_{PAD_ID}": 30.0, f"_{BOS_ID}": 30.0, f"_{UNK_ID}": 20.0, f"_{EOS_ID}": -30.0})
    out = model.generate(SOURCES, beam_size=beam_size, max_length=4)
    for row in range(2):
        words = out["token_ids"][row][: out["lengths"][row]].tolist()
        assert words == [UNK_ID] * 3  # unk is still allowed by default; pad and bos never
    banned = model.generate(SOURCES, beam_size=beam_size, max_length=4, min_length=3, ban_unk=True)
    for row in range(2):
        words = banned["token_ids"][row][: banned["lengths"][row]].tolist()
        assert words and not {PAD_ID, BOS_ID, UNK_ID} & set(words)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_outputs_cut_at_the_length_limit_are_marked(beam_size):
    never_ends = biased(small(), **{f"_{EOS_ID}": -30.0})
    out = never_ends.generate(SOURCES, beam_size=beam_size, max_length=7)
    assert out["truncated"].tolist() == [True, True] and out["lengths"].tolist() == [6, 6]
    ends_at_once = biased(small(), **{f"_{EOS_ID}": 30.0})
    out = ends_at_once.generate(SOURCES, beam_size=beam_size, max_length=7)
    assert out["truncated"].tolist() == [False, False] and out["lengths"].tolist() == [0, 0]


def test_search_defaults_sit_between_the_library_defaults_and_the_arguments():
    model = small(search_defaults={"beam_size": 4, "alpha": 0.8})
    options = model.search_options()
    assert options["beam_size"] == 4 and options["alpha"] == 0.8 and options["beta"] == 0.0
    options = model.search_options(2, alpha=None, beta=0.1)  # None: not given
    assert options["beam_size"] == 2 and options["alpha"] == 0.8 and options["beta"] == 0.1
    assert small().search_options()["beam_size"] == 1
    # generate without arguments runs the default search: the same as asking for it.
    np.testing.assert_array_equal(
        model.generate(SOURCES)["token_ids"], model.generate(SOURCES, beam_size=4, alpha=0.8)["token_ids"]
    )
    assert {key[0] for key in model._search_functions} == {tuple(sorted(model.search_options().items()))}
    # They are part of the config, checked when the model is built.
    assert Seq2Seq.from_config(model.get_config()).search_defaults == {"beam_size": 4, "alpha": 0.8}
    with pytest.raises(ValueError, match=r"search option\(s\) 'beam'"):
        small(search_defaults={"beam": 4})
    with pytest.raises(ValueError, match=r"beam_size=0"):
        small(search_defaults={"beam_size": 0})


def test_every_decoder_option_reaches_the_decoder():
    model = small(attention="cosine", scale=False, scale_init=5.0, seed=3, decoder_layers=2)
    attention = model.decoder.attention_layer
    assert attention.scale is False and attention.scale_init == 5.0 and not attention.weights
    assert model.decoder.seed == 3
    model = small(attention="bahdanau", attention_units=6, normalize=True)
    assert model.decoder.attention_layer.units == 6 and model.decoder.attention_layer.normalize
    config = Seq2Seq.from_config(model.get_config()).get_config()
    assert config["attention_units"] == 6 and config["normalize"] is True


def test_show_attend_tell_options_reach_the_decoder_and_each_loss_is_logged_on_its_own():
    from keras_attn_zoo.layers.attention_decoder import coverage_loss, doubly_stochastic_loss

    options = dict(
        cell="lstm", dropout=0.0, bridge="mean_memory", gate_context=True, coverage=True, coverage_loss_weight=2.0,
        doubly_stochastic_loss_weight=0.5, doubly_stochastic_target=0.25,
    )
    model = small(**options)
    assert model.decoder.gate_layer is not None and model.decoder.bridge == "mean_memory"
    assert (model.decoder.doubly_stochastic_loss_weight, model.decoder.doubly_stochastic_target) == (0.5, 0.25)
    config = Seq2Seq.from_config(model.get_config()).get_config()
    assert {key: config[key] for key in options} == options

    targets = np.array([[1, 14, 15, 16], [1, 17, 0, 0]], "int32")
    x = {"source_ids": SOURCES, "target_ids": targets}
    memory, source_mask, state = model._encode(SOURCES)
    _, alignments = model.decoder(
        model.target_embedding(targets), memory, memory_mask=source_mask, initial_state=state, return_alignments=True
    )
    target_mask = targets != 0
    expected_coverage = 2.0 * float(ops.convert_to_numpy(coverage_loss(alignments, target_mask)))
    expected_doubly = 0.5 * float(ops.convert_to_numpy(doubly_stochastic_loss(alignments, target_mask, source_mask, 0.25)))
    model.compile(optimizer=keras.optimizers.SGD(0.0))  # the weights stay: the logged values are these
    labels = np.roll(targets, -1, axis=1) * target_mask
    history = model.fit(x, labels, batch_size=2, epochs=1, verbose=0, validation_data=(x, labels)).history
    assert history["coverage_loss"][0] == pytest.approx(expected_coverage, rel=1e-4)
    assert history["doubly_stochastic_loss"][0] == pytest.approx(expected_doubly, rel=1e-4)
    # Validation logs the validation data's values (computed, not added to val_loss), not 0.
    assert history["val_coverage_loss"][0] == pytest.approx(expected_coverage, rel=1e-4)
    assert history["val_doubly_stochastic_loss"][0] == pytest.approx(expected_doubly, rel=1e-4)
    assert history["val_loss"][0] < history["loss"][0]  # the training loss adds them; val_loss does not
    assert model.generate(SOURCES, max_length=4)["token_ids"].shape == (2, 4)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_every_decoder_layer_starts_from_the_top_encoder_layer(cell):
    # The documented bridge: tanh(W_i s + b_i) for decoder layer i, s the top encoder layer's
    # final state (both directions joined), for every decoder layer.
    keras.utils.set_random_seed(2)
    model = small(cell=cell, encoder_layers=2, decoder_layers=2)
    source = ops.convert_to_tensor(SOURCES)
    x = model.source_embedding(source)
    mask = ops.not_equal(source, 0)
    first = model.encoder_rnns[0](x, mask=mask)
    top = model.encoder_rnns[1](first[0], mask=mask)
    parts = 1 if cell == "gru" else 2
    joined = [ops.concatenate([top[1 + j], top[1 + parts + j]], -1) for j in range(parts)]
    memory, _, encoder_state = model._encode(source)
    state = model.decoder.get_initial_state(memory, encoder_state)
    for i in range(2):
        for j in range(parts):
            bridge = model.decoder.bridge_layers[i * parts + j]
            expected = np.tanh(ops.convert_to_numpy(joined[j]) @ ops.convert_to_numpy(bridge.kernel)
                               + ops.convert_to_numpy(bridge.bias))
            np.testing.assert_allclose(ops.convert_to_numpy(state["cells"][i][j]), expected, rtol=1e-5, atol=1e-6)


def test_default_compile_counts_only_real_target_tokens():
    model = small()
    model.compile()
    assert isinstance(model.optimizer, keras.optimizers.Adam) and model.optimizer.clipnorm == 1.0
    source = np.array([[5, 6, 7, 0], [8, 9, 0, 0]], "int32")
    target = np.array([[1, 5, 6, 0], [1, 7, 0, 0]], "int32")
    inputs = {"source_ids": source, "target_ids": target}
    predicted = np.argmax(ops.convert_to_numpy(model(inputs)), -1)
    real = target != 0
    # Labels that agree with the model on 4 of the 5 real steps, and disagree on every padded one.
    labels = np.where(real, predicted, (predicted + 1) % 30).astype("int32")
    labels[0, 0] = (predicted[0, 0] + 1) % 30 or 4
    labels[~real] = 0
    result = model.evaluate(inputs, labels, verbose=0, return_dict=True)
    assert result["accuracy"] == pytest.approx(0.8)
    logits = ops.convert_to_numpy(model(inputs))
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    token_loss = -np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]
    assert result["loss"] == pytest.approx(token_loss[real].mean(), rel=1e-4)
    history = model.fit(inputs, labels, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0]) and "accuracy" in history.history
