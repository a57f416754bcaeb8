"""The summarization recipe: See et al.'s pointer-generator with coverage, and its plain baseline."""

from keras_attn_zoo.models.seq2seq import Seq2Seq
from keras_attn_zoo.recipes.translation_recipe import ATTENTION_OPTIONS


def summarization(
    tokenizer=None,
    target_tokenizer=None,
    attention="bahdanau",
    copy=True,
    coverage=True,
    coverage_loss_weight=None,
    vocab_size=None,
    **model_options,
):
    """A `Seq2Seq` summarizer: one vocabulary, tied embeddings, a copy switch and coverage.

    Source and summary are in the same language, so one SentencePiece vocabulary serves both and
    one embedding matrix is the encoder input, the decoder input and the output projection
    (`share_embeddings=True`, `tie_embeddings=True`). `copy=False, coverage=False` builds the
    baseline with the same sizes: plain attention.

    Args:
        tokenizer: the shared `SubwordTokenizer` (or pass `vocab_size` for an untrained model).
        target_tokenizer: None, or the same vocabulary again (`attn-zoo train` passes source and
            target tokenizers; a recipe file with `[tokenizer] shared = true` makes them one).
        attention: "bahdanau" (coverage needs it), or a Luong score as in `translation`.
        copy: the pointer-generator copy switch (`keras_attn_zoo.layers.PointerGenerator`).
        coverage: coverage in the attention score plus the coverage loss (See et al. eq. 10-12).
        coverage_loss_weight: λ of the coverage loss; default 1.0 with coverage (the paper's),
            else 0. See et al. train without coverage first and add it for a short fine-tune;
            a recipe file does that with `[training] init_from` (see `keras_attn_zoo.training`).
        **model_options: any other `Seq2Seq` argument (units, embedding_dim, dropout, ...).

    Example:

    >>> model = summarization(vocab_size=40, units=16, embedding_dim=8)
    >>> model.copy, model.coverage, model.output_shape
    (True, True, (None, None, 40))
    """
    if attention not in ATTENTION_OPTIONS or ATTENTION_OPTIONS[attention][0] is None:
        known = [a for a in ATTENTION_OPTIONS if ATTENTION_OPTIONS[a][0] is not None]
        raise ValueError(f"Received: attention={attention!r}; expected one of {', '.join(map(repr, known))}.")
    if tokenizer is not None:
        vocab_size = tokenizer.vocab_size
        if target_tokenizer is not None and target_tokenizer is not tokenizer and (
            target_tokenizer.id_to_piece(range(target_tokenizer.vocab_size))
            != tokenizer.id_to_piece(range(tokenizer.vocab_size))
        ):
            raise ValueError(
                "Received two different vocabularies; summarization shares one between source and summary "
                "(set `shared = true` in the recipe's [tokenizer] table)."
            )
    if vocab_size is None:
        raise ValueError("Pass the shared tokenizer (or vocab_size).")
    for fixed in ("placement", "source_vocab_size", "target_vocab_size"):
        if fixed in model_options:
            raise ValueError(f"Received: {fixed}={model_options[fixed]!r}; the summarization recipe sets it.")
    if coverage_loss_weight is None:
        coverage_loss_weight = 1.0 if coverage else 0.0
    decoder_attention, placement = ATTENTION_OPTIONS[attention]
    model_options.setdefault("share_embeddings", True)
    model_options.setdefault("tie_embeddings", True)
    model = Seq2Seq(
        vocab_size,
        vocab_size,
        attention=decoder_attention,
        placement=placement,
        copy=copy,
        coverage=coverage,
        coverage_loss_weight=coverage_loss_weight,
        **model_options,
    )
    if tokenizer is not None:
        model.attach_tokenizers(tokenizer, tokenizer)
    return model
