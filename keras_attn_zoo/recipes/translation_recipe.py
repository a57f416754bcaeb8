"""The translation recipe: a text encoder-decoder with a choice of attention."""

from keras_attn_zoo.models.seq2seq import Seq2Seq

# Recipe names of the attention options -> (AttentionDecoder attention, placement).
ATTENTION_OPTIONS = {
    "bahdanau": ("bahdanau", "bahdanau"),
    "luong_dot": ("dot", "luong"),
    "luong_general": ("general", "luong"),
    "luong_concat": ("concat", "luong"),
    "cosine": ("cosine", "luong"),
    None: (None, None),
    "none": (None, None),  # TOML has no null
}


def translation(
    source_tokenizer=None,
    target_tokenizer=None,
    attention="bahdanau",
    source_vocab_size=None,
    target_vocab_size=None,
    **model_options,
):
    """A `Seq2Seq` translation model, with its tokenizers attached when given.

    Args:
        source_tokenizer, target_tokenizer: `keras_attn_zoo.tokenizer.SubwordTokenizer`s; the
            vocabulary sizes come from them (or pass `source_vocab_size`/`target_vocab_size`
            to build an untrained model without tokenizers).
        attention: "bahdanau", "luong_dot", "luong_general", "luong_concat", "cosine", or None
            (or "none") for the classic encoder-decoder with a single context vector: the baseline.
        **model_options: any other `keras_attn_zoo.models.seq2seq.Seq2Seq` argument, with its
            defaults: cell, embedding_dim, units, encoder_layers, decoder_layers, bidirectional,
            dropout, tie_embeddings, input_feeding, bridge, coverage, gate_context,
            doubly_stochastic_loss_weight, max_source_length, max_target_length.

    Example:

    >>> model = translation(source_vocab_size=50, target_vocab_size=60, units=16, embedding_dim=8)
    >>> model.output_shape
    (None, None, 60)
    """
    if attention not in ATTENTION_OPTIONS:
        raise ValueError(
            f"Received: attention={attention!r}; expected one of "
            + ", ".join(repr(a) for a in ATTENTION_OPTIONS)
        )
    if source_tokenizer is not None:
        source_vocab_size = source_tokenizer.vocab_size
    if target_tokenizer is not None:
        target_vocab_size = target_tokenizer.vocab_size
    if source_vocab_size is None or target_vocab_size is None:
        raise ValueError("Pass source_tokenizer and target_tokenizer (or both vocabulary sizes).")
    decoder_attention, placement = ATTENTION_OPTIONS[attention]
    if "placement" in model_options:
        raise ValueError(
            f"Received: placement={model_options['placement']!r}; the recipe sets it from `attention`."
        )
    model = Seq2Seq(
        source_vocab_size,
        target_vocab_size,
        attention=decoder_attention,
        placement=placement,
        **model_options,
    )
    if source_tokenizer is not None and target_tokenizer is not None:
        model.attach_tokenizers(source_tokenizer, target_tokenizer)
    return model
