"""Subword tokenization: a SentencePiece model trained with `sentencepiece`, applied in the TF graph.

Training uses the `sentencepiece` package (a dependency of keras-attn-zoo); applying the
model needs only `tensorflow-text`, whose `SentencepieceTokenizer` runs the same C++ code inside the
graph, so tokenization works in `tf.data` pipelines, in `tf.function` and in exported models.

A `SubwordTokenizer` is fully described by the bytes of its serialized model proto: that is what a
checkpoint stores (`tokenizer.proto`, or the `.model` file written by `save`), and
`SubwordTokenizer(proto)` rebuilds it.

Special ids are fixed for every model trained here: pad=0, bos=1, eos=2, unk=3. `tokenize` adds no
bos/eos; `detokenize` cuts each row at its first eos and drops pad and bos ids, so it can be given a
decoder's raw output.

Normalization is `identity` with SentencePiece's default whitespace handling (leading, trailing and
repeated spaces are removed, which the data files have already done): no character is rewritten, so
`decode(encode(text)) == text` for every text whose characters were seen in training. `nmt_nfkc`
would rewrite compatibility characters (full-width forms, ligatures, non-breaking spaces, "…") and
break that round trip for them. On the Bible data, which holds no such characters, both round-trip
all 817 test verses exactly (see `benchmarks/tokenizer_roundtrip.py`). tf-text logs one harmless line,
"precompiled_charsmap is empty. use identity normalization.", when it loads an identity model.
"""

import hashlib
import io
import re
import warnings
from pathlib import Path

import tensorflow as tf
import tensorflow_text as tf_text
from tensorflow_text.python.ops import sentencepiece_tokenizer as _tf_text_sentencepiece

from keras_attn_zoo.errors import CheckpointError, DataError

PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
_SPECIAL_PIECES = ("<pad>", "<s>", "</s>", "<unk>")
_MODEL_TYPES = ("unigram", "bpe", "char", "word")
_TOO_HIGH = re.compile(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)")
_TOO_LOW = re.compile(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)")


class SubwordTokenizer:
    """A SentencePiece subword tokenizer whose tokenize/detokenize run inside the TF graph.

    Args:
        proto: the bytes of a serialized SentencePiece `ModelProto` (the content of a `.model`
            file) trained with pad=0, bos=1, eos=2, unk=3, as `SubwordTokenizer.train` does.

    Example:

    >>> tok = SubwordTokenizer.train(["el perro come", "el gato duerme"] * 20, vocab_size=20)
    >>> ids = tok.encode(["el gato come"])
    >>> tok.decode(ids)
    ['el gato come']
    >>> tok.decode([ids[0] + [tok.eos_id, 7, 8]])  # everything from the first eos on is dropped
    ['el gato come']
    """

    pad_id = PAD_ID
    bos_id = BOS_ID
    eos_id = EOS_ID
    unk_id = UNK_ID

    def __init__(self, proto):
        if not isinstance(proto, (bytes, bytearray)):
            raise TypeError(f"Received: proto of type {type(proto).__name__}; expected bytes.")
        self._proto = bytes(proto)
        try:
            self._sp = _in_graph_sentencepiece(self._proto)
            self._vocab_size = int(self._sp.vocab_size())
            specials = [p.decode("utf-8") for p in self._sp.id_to_string(list(range(4))).numpy()]
        except (tf.errors.OpError, ValueError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise CheckpointError(
                f"Received {len(self._proto)} bytes that are not a SentencePiece model proto ({first[-120:]})."
            ) from None
        if tuple(specials) != _SPECIAL_PIECES:
            raise CheckpointError(
                f"Received a SentencePiece model whose ids 0-3 are {specials}; expected "
                f"{list(_SPECIAL_PIECES)} (pad=0, bos=1, eos=2, unk=3), as SubwordTokenizer.train makes."
            )

    # ----------------------------------------------------------------------------------------
    # Training, saving, loading.

    @classmethod
    def train(cls, texts, vocab_size, model_type="unigram", seed=0, **options):
        """Trains a SentencePiece model on an iterable of strings.

        Args:
            texts: iterable of str (one sentence each; empty ones are skipped).
            vocab_size: number of pieces, the 4 special ones included. When the corpus is too
                small for it, the largest size SentencePiece allows is used, with a warning.
            model_type: "unigram" (default), "bpe", "char" or "word".
            seed: seed of SentencePiece's random generator. Training is deterministic given the seed
                and `num_threads` (default 1: the model then does not depend on the machine).
            **options: any other `sentencepiece.SentencePieceTrainer.train` option, e.g.
                `byte_fallback=True` (needs vocab_size > 256 + 4) or `num_threads`.

        Returns:
            a `SubwordTokenizer`.
        """
        try:
            import sentencepiece as spm
        except ImportError:  # pragma: no cover - depends on the installation
            raise ImportError(
                "Training a tokenizer needs the `sentencepiece` package, which is not installed; install it with: "
                "pip install sentencepiece"
            ) from None
        if model_type not in _MODEL_TYPES:
            raise ValueError(f"Received: model_type={model_type!r}; expected one of {', '.join(map(repr, _MODEL_TYPES))}.")
        if not isinstance(vocab_size, int) or vocab_size <= 4:
            raise ValueError(f"Received: vocab_size={vocab_size!r}; expected an integer > 4.")
        sentences = [t for t in (str(t).strip() for t in texts) if t]
        if not sentences:
            raise DataError("Received no non-empty text to train a tokenizer on; expected at least one sentence.")
        spec = dict(
            model_type=model_type,
            character_coverage=1.0,
            normalization_rule_name="identity",
            pad_id=PAD_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            unk_id=UNK_ID,
            num_threads=1,  # the result depends on the thread count; one thread gives the same model everywhere
            minloglevel=2,
        )
        spec.update(options)
        spm.set_random_generator_seed(int(seed))
        size = vocab_size
        while True:
            writer = io.BytesIO()
            try:
                spm.SentencePieceTrainer.train(
                    sentence_iterator=iter(sentences), model_writer=writer, vocab_size=size, **spec
                )
                break
            except RuntimeError as error:
                too_high, too_low = _TOO_HIGH.search(str(error)), _TOO_LOW.search(str(error))
                if too_high and int(too_high.group(2)) < size:
                    limit = int(too_high.group(2))
                    warnings.warn(
                        f"vocab_size={vocab_size} is too large for {len(sentences)} sentences; "
                        f"trained with the largest size this corpus allows, {limit}.",
                        stacklevel=2,
                    )
                    size = limit
                    continue
                if too_low:
                    raise ValueError(
                        f"Received: vocab_size={vocab_size}; expected at least {too_low.group(2)}: the corpus "
                        f"has that many distinct characters plus special pieces (character_coverage=1.0)."
                    ) from None
                raise
        return cls(writer.getvalue())

    @property
    def proto(self):
        """The serialized SentencePiece model (bytes): all a checkpoint needs to rebuild this tokenizer."""
        return self._proto

    @property
    def tf_tokenizer(self):
        """The `tensorflow_text.SentencepieceTokenizer` (a trackable `tf.Module`) used in the graph."""
        return self._sp

    @property
    def vocab_size(self):
        return self._vocab_size

    def save(self, path):
        """Writes the model proto to `path` (a SentencePiece `.model` file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self._proto)

    @classmethod
    def load(cls, path):
        """Reads a `.model` file written by `save` (or by `spm_train` with the same special ids)."""
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: no such tokenizer file; expected a SentencePiece .model file.")
        try:
            return cls(path.read_bytes())
        except CheckpointError as error:
            raise CheckpointError(f"{path}: {error}") from None

    # ----------------------------------------------------------------------------------------
    # In-graph ops.

    def tokenize(self, strings):
        """String tensor (batch,) -> `tf.RaggedTensor` int32 (batch, None) of piece ids, no bos/eos."""
        return self._sp.tokenize(tf.convert_to_tensor(strings, dtype=tf.string))

    def detokenize(self, ids):
        """Int tensor (batch, T), dense or ragged -> string tensor (batch,).

        Each row is cut at its first eos; pad and bos ids are dropped; ids outside the vocabulary
        are read as unk. Runs inside `tf.function` and `tf.data`.
        """
        if isinstance(ids, tf.RaggedTensor):
            ids = ids.to_tensor(default_value=PAD_ID)
        ids = tf.cast(tf.convert_to_tensor(ids), tf.int32)
        before_eos = tf.math.cumsum(tf.cast(tf.equal(ids, EOS_ID), tf.int32), axis=-1) == 0
        keep = before_eos & tf.not_equal(ids, PAD_ID) & tf.not_equal(ids, BOS_ID)
        known = (ids >= 0) & (ids < self._vocab_size)
        ids = tf.where(known, ids, tf.constant(UNK_ID, tf.int32))
        return self._sp.detokenize(tf.ragged.boolean_mask(ids, keep))

    # ----------------------------------------------------------------------------------------
    # Python conveniences.

    def id_to_piece(self, ids):
        """Piece strings for a list of ids (or one id), e.g. for the labels of an attention plot."""
        single = isinstance(ids, int) or getattr(ids, "ndim", None) == 0
        flat = [int(ids)] if single else [int(i) for i in ids]
        bad = [i for i in flat if not 0 <= i < self._vocab_size]
        if bad:
            raise ValueError(f"Received ids {bad[:5]}; expected ids in [0, {self._vocab_size}).")
        if not flat:
            return []
        pieces = [p.decode("utf-8") for p in self._sp.id_to_string(tf.constant(flat, tf.int32)).numpy()]
        return pieces[0] if single else pieces

    def encode(self, texts):
        """list[str] -> list[list[int]] (no bos/eos)."""
        texts = list(texts)
        if not texts:
            return []
        return self.tokenize(tf.constant(texts, dtype=tf.string)).to_list()

    def decode(self, ids):
        """list[list[int]] -> list[str], with the cuts of `detokenize`."""
        ids = [list(map(int, row)) for row in ids]
        if not ids:
            return []
        ragged = tf.ragged.constant(ids, dtype=tf.int32, ragged_rank=1)
        return [s.decode("utf-8") for s in self.detokenize(ragged).numpy()]

    def __repr__(self):
        return f"SubwordTokenizer(vocab_size={self._vocab_size})"


class _SharedModelResource(_tf_text_sentencepiece._SentencepieceModelResource):
    """The model resource of `tf_text.SentencepieceTokenizer`, created under a shared name.

    tf-text creates its resource private to the op kernel that made it, and the kernel deletes it
    when TF clears its eager kernel cache, which `tf.random.set_seed` and
    `keras.utils.set_random_seed` do: every tokenizer made before such a call then fails with
    "Resource ... SentencepieceResource does not exist". A shared name (one per model) keeps the
    resource in the resource manager for the life of the process instead.
    """

    def _create_resource(self):
        with tf.name_scope("SubwordTokenizerModel"):
            return _tf_text_sentencepiece.gen_sentencepiece_tokenizer.sentencepiece_op(
                model=self._model, shared_name=self._name
            )


def _in_graph_sentencepiece(proto):
    shared_name = "keras_attn_zoo_sentencepiece_" + hashlib.sha256(proto).hexdigest()[:32]
    tokenizer = tf_text.SentencepieceTokenizer(model=proto, out_type=tf.int32)
    tokenizer._model_resource = _SharedModelResource(proto, shared_name)
    return tokenizer
