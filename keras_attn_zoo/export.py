"""Serving export: a TensorFlow SavedModel that goes from strings to strings in one graph.

    text (tf.string, [batch])
      -> strip (the characters Python's `str.strip` removes) -> SentencePiece tokenize
      -> truncate to `model.max_source_length` -> pad -> compiled greedy/beam search
      -> SentencePiece detokenize
    -> {"translation": tf.string [batch], "score": tf.float32 [batch]}

The SavedModel holds the model's variables and both tokenizers' SentencePiece resources (the model
protos are constants inside the resources' creator functions), so it is self-contained: loading it
needs TensorFlow and `import tensorflow_text` (which registers the SentencePiece ops), not
keras-attn-zoo; it holds plain variables and functions, no Keras object to revive (tensorflow-text
imports Keras on its own). It serves under TF Serving as the `serving_default` signature:

    import tensorflow as tf, tensorflow_text  # noqa: F401 (registers the ops)
    translate = tf.saved_model.load(directory).signatures["serving_default"]
    translate(text=tf.constant(["In the beginning God created the heavens and the earth."]))

The outputs are those of `Seq2Seq.predict_texts` with the same beam size and search options: an
empty or whitespace-only input gives "" (and score 0.0, where `predict_texts` gives None) without
being searched; a longer input than `max_source_length` pieces is cut (silently: a graph has no
warning channel). The search options are fixed at export time; export once per setting.
"""

from pathlib import Path

import tensorflow as tf

from keras_attn_zoo.models.seq2seq import SEARCH_DEFAULTS
from keras_attn_zoo.staging import staged_folder

SEARCH_OPTIONS = tuple(SEARCH_DEFAULTS)
SIGNATURE_KEY = "serving_default"

# Every character for which Python's str.isspace() is true, as an RE2 class: `predict_texts`
# strips inputs with `str.strip()`, and tf.strings.strip removes ASCII whitespace only.
_SPACE = r"[\t-\r\x1c-\x20\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]"
_OUTER_SPACE = f"^{_SPACE}+|{_SPACE}+$"


def _serving_module(model, options):
    """A tf.Module that tracks what the graph uses: the variables, the tokenizers' resources."""
    module = tf.Module(name="keras_attn_zoo_serving")
    module.model_variables = list(model.variables)
    # The tf-text tokenizers (tf.Modules) own the SentencePiece resources the graph captures. The
    # Keras model itself is not tracked: the SavedModel holds no Keras object, only variables.
    module.source_tokenizer = model.source_tokenizer.tf_tokenizer
    module.target_tokenizer = model.target_tokenizer.tf_tokenizer

    def translate(text):
        stripped = tf.strings.regex_replace(text, _OUTER_SPACE, "")
        present = tf.strings.length(stripped) > 0
        # Search only the non-empty inputs, then put the results back in input order; the empty
        # ones read the "" / 0.0 appended at the end.
        kept = tf.boolean_mask(stripped, present)
        position = tf.where(present, tf.cumsum(tf.cast(present, tf.int32)) - 1, tf.size(kept))

        def search():
            ids = model.source_tokenizer.tokenize(kept)[:, : model.max_source_length]
            source_ids = tf.cast(ids.to_tensor(default_value=0), tf.int32)
            source_ids = tf.pad(source_ids, [[0, 0], [0, tf.maximum(1 - tf.shape(source_ids)[1], 0)]])
            out = model.search(source_ids, options)
            return model.target_tokenizer.detokenize(out["token_ids"]), tf.cast(out["scores"], tf.float32)

        def nothing():
            return tf.zeros([0], tf.string), tf.zeros([0], tf.float32)

        translations, scores = tf.cond(tf.size(kept) > 0, search, nothing)
        return {
            "translation": tf.gather(tf.concat([translations, [""]], 0), position),
            "score": tf.gather(tf.concat([scores, [0.0]], 0), position),
        }

    module.translate = tf.function(
        translate, input_signature=[tf.TensorSpec([None], tf.string, name="text")], autograph=False
    )
    return module


def export_saved_model(model, directory, beam_size=None, **search_options):
    """Write `model` with its tokenizers as a SavedModel for serving; returns the directory's Path.

    Args:
        model: a `Seq2Seq` with tokenizers attached (`attach_tokenizers`, or loaded from a
            checkpoint that has them).
        directory: where to write the SavedModel. A directory that exists must be empty or an
            earlier SavedModel, which is replaced; the new one is written beside it and moved in
            at the end, so an interrupted export leaves no half-written SavedModel.
        beam_size: 1 for greedy search; default the model's (`search_defaults`), else 1.
        **search_options: any of `SEARCH_OPTIONS`, as `Seq2Seq.generate` takes them (alpha,
            beta, min_length, no_repeat_ngram_size, max_length, max_length_ratio,
            max_length_offset, ban_unk, stepwise_coverage; unset ones default to the model's
            `search_defaults`); fixed in the exported graph.

    The `serving_default` signature takes `text`, a 1-D tf.string tensor, and returns
    `{"translation": tf.string [batch], "score": tf.float32 [batch]}`.

    Example (the loading side needs only TensorFlow and tensorflow-text):

        export_saved_model(model, "exported/bible_en_es", beam_size=4, alpha=0.6)
        import tensorflow as tf, tensorflow_text  # noqa: F401 (registers the ops)
        serve = tf.saved_model.load("exported/bible_en_es").signatures["serving_default"]
        serve(text=tf.constant(["God said, let there be light."]))["translation"]
    """
    if getattr(model, "source_tokenizer", None) is None or getattr(model, "target_tokenizer", None) is None:
        raise ValueError(
            f"Received a {type(model).__name__} without tokenizers; expected a model with "
            "attach_tokenizers(...) done (or loaded from a checkpoint with tokenizer assets)."
        )
    options = model.search_options(beam_size, **search_options)
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or (any(directory.iterdir()) and not _is_saved_model(directory))):
        raise ValueError(
            f"Received: directory={str(directory)!r}, which holds other files; expected a new or empty "
            "directory, or an earlier SavedModel to replace."
        )

    module = _serving_module(model, options)
    serving = module.translate.get_concrete_function()
    with staged_folder(directory) as staging:
        tf.saved_model.save(module, str(staging), signatures={SIGNATURE_KEY: serving})
    return directory


def _is_saved_model(directory):
    return (directory / "saved_model.pb").is_file()
