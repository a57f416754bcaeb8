import io
from pathlib import Path

import pytest
import tensorflow as tf

from keras_attn_zoo.errors import CheckpointError, DataError
from keras_attn_zoo.tokenizer import SubwordTokenizer

FIXTURES = Path(__file__).parent / "fixtures"
VOCAB = 100


def _column(name):
    lines = (FIXTURES / "bible_en_es_tiny.tsv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return [line.split("\t")[header.index(name)] for line in lines[1:]]


@pytest.fixture(scope="module")
def texts():
    return _column("es")


@pytest.fixture(scope="module")
def tokenizer(texts):
    return SubwordTokenizer.train(texts, vocab_size=VOCAB, seed=0)


def test_special_ids_and_vocab_size(tokenizer):
    assert (tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id, tokenizer.unk_id) == (0, 1, 2, 3)
    assert tokenizer.vocab_size == VOCAB
    assert tokenizer.id_to_piece([0, 1, 2, 3]) == ["<pad>", "<s>", "</s>", "<unk>"]
    assert tokenizer.id_to_piece(1) == "<s>"
    with pytest.raises(ValueError, match=r"\[100\]"):
        tokenizer.id_to_piece([5, 100])


def test_ids_are_ordinary_pieces_in_range(tokenizer, texts):
    ids = [i for row in tokenizer.encode(texts) for i in row]
    assert min(ids) >= 4, "tokenize must add no pad/bos/eos and give no unk for seen characters"
    assert max(ids) < tokenizer.vocab_size
    assert len(set(ids)) > 50  # the vocabulary is really used, not one piece per character class


def test_round_trip_is_exact(tokenizer, texts):
    assert tokenizer.decode(tokenizer.encode(texts)) == texts


def test_unseen_characters_become_unk(tokenizer):
    (ids,) = tokenizer.encode(["Dios 東"])
    assert tokenizer.unk_id in ids
    (text,) = tokenizer.decode([ids])
    assert text.startswith("Dios") and text.count("⁇") == 1  # SentencePiece renders unk as " ⁇ "


def test_detokenize_stops_at_eos_and_drops_pad_and_bos(tokenizer, texts):
    a, b = tokenizer.encode(texts[:2])
    bos, eos, pad = tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id
    rows = [
        [bos] + a + [eos] + b,  # everything after the first eos is dropped
        [bos] + b[:3] + [pad, pad] + b[3:] + [eos, eos],  # pads are dropped wherever they are
        [eos] + a,  # eos first: empty text
        [pad] * 4,
    ]
    width = max(map(len, rows))
    dense = tf.constant([r + [pad] * (width - len(r)) for r in rows], tf.int32)
    expected = [texts[0], texts[1], "", ""]
    assert [s.decode("utf-8") for s in tokenizer.detokenize(dense).numpy()] == expected
    ragged = tf.ragged.constant(rows, dtype=tf.int64)
    assert [s.decode("utf-8") for s in tokenizer.detokenize(ragged).numpy()] == expected
    assert tokenizer.decode(rows) == expected


def test_detokenize_reads_out_of_range_ids_as_unk(tokenizer):
    (ids,) = tokenizer.encode(["Dios"])
    (text,) = tokenizer.decode([ids + [tokenizer.vocab_size + 7, -1]])
    assert text.startswith("Dios") and text.count("⁇") == 2


def test_works_inside_tf_function_and_tf_data(tokenizer, texts):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def round_trip(strings):
        ids = tokenizer.tokenize(strings)
        with_eos = tf.concat([ids, tf.fill([ids.nrows(), 1], tokenizer.eos_id)], axis=1)
        return tokenizer.detokenize(with_eos.to_tensor())

    out = round_trip(tf.constant(texts[:5]))
    assert [s.decode("utf-8") for s in out.numpy()] == texts[:5]

    ds = tf.data.Dataset.from_tensor_slices(texts[:6]).batch(3).map(tokenizer.tokenize)
    batches = [b.to_list() for b in ds]
    assert batches[0] + batches[1] == tokenizer.encode(texts[:6])


def test_save_load_and_bytes_give_identical_ids(tokenizer, texts, tmp_path):
    path = tmp_path / "assets" / "target.model"
    tokenizer.save(path)
    loaded = SubwordTokenizer.load(path)
    from_bytes = SubwordTokenizer(path.read_bytes())
    assert loaded.proto == tokenizer.proto
    assert loaded.vocab_size == from_bytes.vocab_size == tokenizer.vocab_size
    assert loaded.encode(texts) == tokenizer.encode(texts) == from_bytes.encode(texts)


def test_load_missing_or_corrupt_file_raises_checkpoint_error(tokenizer, tmp_path):
    with pytest.raises(CheckpointError, match="missing.model: no such tokenizer file"):
        SubwordTokenizer.load(tmp_path / "missing.model")
    for name, content in [("garbage.model", b"not a sentencepiece model"), ("truncated.model", tokenizer.proto[:50])]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match=f"{name}: .*not a SentencePiece model proto") as info:
            SubwordTokenizer.load(tmp_path / name)
        assert "\n" not in str(info.value)


def test_model_with_other_special_ids_is_rejected(texts):
    import sentencepiece as spm

    writer = io.BytesIO()  # sentencepiece's defaults: unk=0, bos=1, eos=2, no pad
    spm.SentencePieceTrainer.train(sentence_iterator=iter(texts), model_writer=writer, vocab_size=60, minloglevel=2)
    with pytest.raises(CheckpointError, match=r"ids 0-3 are \['<unk>', '<s>', '</s>'"):
        SubwordTokenizer(writer.getvalue())


def test_training_is_deterministic_and_supports_bpe(tokenizer, texts):
    again = SubwordTokenizer.train(texts, vocab_size=VOCAB, seed=0)
    assert again.proto == tokenizer.proto
    bpe = SubwordTokenizer.train(texts, vocab_size=VOCAB, model_type="bpe")
    assert bpe.vocab_size == VOCAB
    assert bpe.encode(texts) != tokenizer.encode(texts)
    assert bpe.decode(bpe.encode(texts)) == texts


def test_too_large_vocab_is_clipped_with_a_warning(texts):
    with pytest.warns(UserWarning, match=r"vocab_size=5000 is too large for 60 sentences; .* (\d+)\.") as record:
        small = SubwordTokenizer.train(texts, vocab_size=5000)
    limit = int(str(record[0].message).rstrip(".").rsplit(" ", 1)[1])
    assert small.vocab_size == limit < 5000
    assert small.decode(small.encode(texts)) == texts


def test_bad_training_arguments(texts):
    with pytest.raises(ValueError, match=r"vocab_size=10; expected at least \d+"):
        SubwordTokenizer.train(texts, vocab_size=10)
    with pytest.raises(ValueError, match="model_type='wordpiece'"):
        SubwordTokenizer.train(texts, vocab_size=VOCAB, model_type="wordpiece")
    with pytest.raises(DataError, match="no non-empty text"):
        SubwordTokenizer.train(["", "   "], vocab_size=VOCAB)


def test_survives_seeding_and_clear_session(texts):
    import keras

    tok = SubwordTokenizer.train(texts[:20], vocab_size=80)
    expected = tok.encode(texts[:3])
    tf.random.set_seed(1)  # clears TF's eager kernel cache
    keras.utils.set_random_seed(2)
    keras.backend.clear_session()
    assert tok.encode(texts[:3]) == expected
    assert tok.decode(expected) == texts[:3]
