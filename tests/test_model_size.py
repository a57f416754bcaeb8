"""`model_size.parameter_count` gives exactly what a built `Seq2Seq` counts, for every option."""

import itertools

import pytest

from keras_attn_zoo.model_size import parameter_count
from keras_attn_zoo.models.seq2seq import Seq2Seq

CASES = [
    dict(attention=attention, cell=cell, bidirectional=bidirectional, tie_embeddings=tied, bridge=bridge)
    for attention, (cell, bidirectional, tied, bridge) in itertools.product(
        ["bahdanau", "dot", "general", "concat", "cosine", None],
        [("gru", True, True, "dense"), ("lstm", False, False, "none"), ("lstm", True, True, "dense")],
    )
] + [
    dict(attention="bahdanau", coverage=True, encoder_layers=2, decoder_layers=2),
    dict(attention="general", placement="bahdanau", bridge="copy"),
    dict(attention="dot", input_feeding=False, decoder_layers=3, cell="lstm"),
    dict(attention="bahdanau", placement="luong", input_feeding=False),
    dict(attention="bahdanau", attention_units=5, normalize=True, coverage=True),
    dict(attention="concat", attention_units=7, scale=True),
    dict(attention="cosine"),
    dict(attention="cosine", scale=False, scale_init=4.0),
    dict(attention="general", scale=True, seed=3, search_defaults={"beam_size": 2}),
    dict(attention="bahdanau", cell="lstm", decoder_layers=2, gate_context=True, bridge="mean_memory",
         doubly_stochastic_loss_weight=1.0, doubly_stochastic_target=0.5),
    dict(attention="dot", input_feeding=False, gate_context=True, bridge="mean_memory"),
    # summarization: one vocabulary, shared embeddings, the copy switch, coverage
    dict(attention="bahdanau", share_embeddings=True, copy=True, coverage=True, coverage_loss_weight=1.0),
    dict(attention="general", share_embeddings=True, tie_embeddings=False, copy=True),
    dict(attention="bahdanau", share_embeddings=True),
]


@pytest.mark.parametrize("options", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_parameter_count_matches_the_built_model(options):
    shared = options.get("share_embeddings") or options.get("copy")  # one vocabulary
    arguments = dict(source_vocab_size=31 if shared else 23, target_vocab_size=31, units=8, embedding_dim=6, **options)
    if options.get("attention") in ("dot", "cosine") or options.get("bridge") == "copy":
        arguments["embedding_dim"] = 8  # dot scores and copied states need equal sizes
    assert parameter_count(arguments) == Seq2Seq(**arguments).count_params()


def test_defaults_are_seq2seq_defaults():
    arguments = dict(source_vocab_size=40, target_vocab_size=50, units=16, embedding_dim=8)
    assert parameter_count(arguments) == Seq2Seq(**arguments).count_params()


def test_bundled_preset_size():
    import json

    from keras_attn_zoo.presets import bundled_checkpoint

    folder = bundled_checkpoint("bible_en_es_bahdanau")
    config = json.loads((folder / "config.json").read_text())["config"]
    metadata = json.loads((folder / "metadata.json").read_text())
    assert parameter_count(config) == metadata["parameters"] == 3_333_792


# -- Captioner: the trained part (the frozen CNN is rebuilt at load, not in the weights file) ----

CAPTIONER_CASES = [
    dict(),
    dict(attention="general", cell="gru", tie_embeddings=False, gate_context=False, bridge="none"),
    dict(attention="concat", attention_units=5, scale=True),
    dict(attention="bahdanau", attention_units=3, normalize=True, bridge="dense"),
    dict(attention="dot", cell="gru", embedding_dim=8),
    dict(attention="cosine", cell="lstm", tie_embeddings=False),
    dict(placement="luong", input_feeding=False),
    dict(placement="luong", input_feeding=True, tie_embeddings=False, attention="general"),
]


@pytest.mark.parametrize("options", CAPTIONER_CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()) or "defaults")
def test_captioner_parameter_count_matches_the_built_model(options):
    from keras_attn_zoo.models.captioner import Captioner

    arguments = dict(vocab_size=29, feature_channels=12, feature_grid=2, image_size=64, units=8, embedding_dim=6)
    arguments.update(options)
    model = Captioner(**arguments)
    assert parameter_count(arguments, "Captioner") == model.count_params()
    assert model._image_encoder is None  # counting built no CNN


def test_captioner_size_arguments_are_checked():
    with pytest.raises(ValueError, match=r"feature_channels=0; expected an integer >= 1"):
        parameter_count(dict(vocab_size=29, feature_channels=0), "Captioner")
    with pytest.raises(ValueError, match=r"model class 'Transformer'"):
        parameter_count(dict(vocab_size=29), "Transformer")
