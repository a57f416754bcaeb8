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
    cell="gru",
    embedding_dim=256,
    units=256,
    encoder_layers=1,
    decoder_layers=1,
    bidirectional=True,
    dropout=0.2,
    tie_embeddings=True,
    input_feeding=True,
    bridge="dense",
    max_source_length=128,
    max_target_length=160,
    source_vocab_size=None,
    target_vocab_size=None,
):
    """A `Seq2Seq` translation model, with its tokenizers attached when given.

    Args:
        source_tokenizer, target_tokenizer: `keras_attn_zoo.tokenizer.SubwordTokenizer`s; the
            vocabulary sizes come from them (or pass `source_vocab_size`/`target_vocab_size`
            to build an untrained model without tokenizers).
        attention: "bahdanau", "luong_dot", "luong_general", "luong_concat", "cosine", or None
            for the classic encoder-decoder with a single context vector (the baseline).
        cell, embedding_dim, units, encoder_layers, decoder_layers, bidirectional, dropout,
        tie_embeddings, input_feeding, bridge, max_source_length, max_target_length: see
            `keras_attn_zoo.models.seq2seq.Seq2Seq`.

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
    attention = None if attention == "none" else attention
    model = Seq2Seq(
        source_vocab_size,
        target_vocab_size,
        attention=decoder_attention,
        placement=placement,
        cell=cell,
        embedding_dim=embedding_dim,
        units=units,
        encoder_layers=encoder_layers,
        decoder_layers=decoder_layers,
        bidirectional=bidirectional,
        dropout=dropout,
        tie_embeddings=tie_embeddings,
        bridge=bridge,
        input_feeding=input_feeding,
        max_source_length=max_source_length,
        max_target_length=max_target_length,
    )
    if source_tokenizer is not None and target_tokenizer is not None:
        model.attach_tokenizers(source_tokenizer, target_tokenizer)
    return model
