import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from keras_attn_zoo import data
from keras_attn_zoo.data import make_dataset, read_pairs
from keras_attn_zoo.errors import DataError
from keras_attn_zoo.tokenizer import SubwordTokenizer

FIXTURES = Path(__file__).parent / "fixtures"
TINY = FIXTURES / "bible_en_es_tiny.tsv"


def _raises_one_line(match, *args, **kwargs):
    with pytest.raises(DataError, match=match) as info:
        read_pairs(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


# --------------------------------------------------------------------------------------------
# read_pairs: formats.


def test_tsv_reads_all_rows_and_filters_splits():
    en, es = read_pairs(TINY, "en", "es")
    assert len(en) == len(es) == 60
    assert en[0] == "In the beginning God created the heavens and the earth."
    assert es[0] == "EN el principio crió Dios los cielos y la tierra."
    sizes = {split: len(read_pairs(TINY, "en", "es", split=split)[0]) for split in ("train", "dev", "test")}
    assert sizes == {"train": 52, "dev": 4, "test": 4}
    dev_en, _ = read_pairs(TINY, "en", "es", split="dev")
    assert dev_en[0].startswith("The Word of Yahweh that came to Joel")


def test_gzipped_tsv_and_column_indices_read_the_same(tmp_path):
    gz = tmp_path / "tiny.tsv.gz"
    with open(TINY, "rb") as f, gzip.open(gz, "wb") as out:
        shutil.copyfileobj(f, out)
    assert read_pairs(gz, "en", "es", split="test") == read_pairs(TINY, "en", "es", split="test")
    assert read_pairs(TINY, 2, 3) == read_pairs(TINY, "en", "es")
    es, en = read_pairs(TINY, "es", "en")  # either direction
    assert en[0].startswith("In the beginning")


def test_csv_handles_quotes_commas_line_breaks_and_strips():
    en, es = read_pairs(FIXTURES / "pairs.csv", "english", "spanish")
    assert en == ["Good morning.", "Yes, of course.", 'He said "no",\nthen left.', "Thank you.", "Where is the house?"]
    assert es[4] == "¿Dónde está la casa?"
    assert read_pairs(FIXTURES / "pairs.csv", "english", "spanish", split="dev") == (
        ['He said "no",\nthen left.'],
        ['Dijo "no",\ny se fue.'],
    )


def test_jsonl_skips_and_counts_pairs_with_an_empty_side():
    with pytest.warns(UserWarning, match=r"skipped 1 pair\(s\) with an empty source or target, at line\(s\) 3\."):
        en, es = read_pairs(FIXTURES / "pairs.jsonl", "en", "es")
    assert en == ["The water is cold.", "I see the sea.", "Open the door.", "It is late."]
    assert es[0] == "El agua está fría."
    with pytest.warns(UserWarning, match="skipped 1"):
        assert read_pairs(FIXTURES / "pairs.jsonl", "en", "es", split="train") == (
            ["The water is cold.", "I see the sea."],
            ["El agua está fría.", "Veo el mar."],
        )


def test_anki_txt_ignores_names_and_takes_indices():
    path = FIXTURES / "anki_en_es.txt"
    en, es = read_pairs(path, "en", "es")
    assert en == ["Go.", "Run!", "Who?", "I won."]
    assert es == ["Ve.", "¡Corre!", "¿Quién?", "Gané."]
    assert read_pairs(path, 1, 0) == (es, en)
    _raises_one_line(r"anki_en_es\.txt: Received split='train', but Anki \.txt files have no split column", path, 0, 1, split="train")


def test_explicit_format_overrides_the_name(tmp_path):
    path = tmp_path / "pairs.data"
    shutil.copy(FIXTURES / "pairs.jsonl", path)
    _raises_one_line(r"pairs\.data: cannot tell the format from the name", path, "en", "es")
    with pytest.warns(UserWarning):
        assert read_pairs(path, "en", "es", format="jsonl")[0][0] == "The water is cold."
    with pytest.raises(ValueError, match="format='xml'"):
        read_pairs(path, "en", "es", format="xml")


# --------------------------------------------------------------------------------------------
# read_pairs: errors, each one line naming the file and the line.


def test_missing_file(tmp_path):
    _raises_one_line(r"nope\.tsv: no such file", tmp_path / "nope.tsv", "en", "es")


def test_bytes_that_are_not_utf8_name_the_line():
    message = _raises_one_line(r"latin1\.tsv:3: byte 0xf1 at column 13 is not UTF-8", FIXTURES / "latin1.tsv", "en", "es")
    assert "expected UTF-8" in message


def test_missing_column_names_it_and_lists_those_present(tmp_path):
    _raises_one_line(r"no column 'fr'; columns present: split, ref, en, es\.$", TINY, "en", "fr")
    _raises_one_line(r"no column 'de'; columns present: en, es, split", FIXTURES / "pairs.jsonl", "de", "es")
    no_split = tmp_path / "no_split.csv"
    no_split.write_text("en,es\nHi.,Hola.\n", encoding="utf-8")
    _raises_one_line(r"no column 'split' \(needed by split='train'\); columns present: en, es", no_split, "en", "es", split="train")
    _raises_one_line(r"column index 7; the file has 4 columns", TINY, 0, 7)


def test_tsv_without_a_column_names_the_file_the_header_line_and_the_column(tmp_path):
    path = tmp_path / "descriptions.tsv"
    path.write_text("split\tpackage\tdescription\ntrain\tfoo\tFoo frobnicates files.\n", encoding="utf-8")
    _raises_one_line(
        r"descriptions\.tsv:1: no column 'synopsis'; columns present: split, package, description\.$",
        path, "description", "synopsis", split="train",
    )
    path.write_text("\nsplit\tdescription\ntrain\tFoo frobnicates files.\n", encoding="utf-8")
    _raises_one_line(r"descriptions\.tsv:2: no column 'synopsis';", path, "description", "synopsis")


def test_jsonl_record_without_a_key_names_the_file_the_line_and_the_key(tmp_path):
    path = tmp_path / "descriptions.jsonl"
    path.write_text(
        '{"description": "Foo frobnicates files.", "synopsis": "frobnicator", "split": "train"}\n'
        '{"description": "Bar draws charts.", "split": "train"}\n'
        '{"description": "Baz plays music.", "synopsis": "music player"}\n',
        encoding="utf-8",
    )
    _raises_one_line(
        r"descriptions\.jsonl: 1 record\(s\) without the key 'synopsis' at line\(s\) 2; "
        r"expected every record to have 'description', 'synopsis'\.$",
        path, "description", "synopsis",
    )
    # The split key is checked too when filtering by it, before any row is dropped.
    path.write_text(
        '{"description": "Foo frobnicates files.", "synopsis": "frobnicator", "split": "train"}\n'
        '{"description": "Baz plays music.", "synopsis": "music player"}\n',
        encoding="utf-8",
    )
    _raises_one_line(r"descriptions\.jsonl: 1 record\(s\) without the key 'split' at line\(s\) 2;", path,
                     "description", "synopsis", split="train")
    # A key that is present but null is an empty side: skipped with a warning, as before.
    path.write_text(
        '{"description": "Foo frobnicates files.", "synopsis": "frobnicator"}\n'
        '{"description": "Baz plays music.", "synopsis": null}\n',
        encoding="utf-8",
    )
    with pytest.warns(UserWarning, match=r"skipped 1 pair\(s\) with an empty source or target, at line\(s\) 2\."):
        assert read_pairs(path, "description", "synopsis") == (["Foo frobnicates files."], ["frobnicator"])


def test_unknown_split_lists_the_splits_present():
    _raises_one_line(r"no rows with split='valid'; splits present: dev, test, train\.", TINY, "en", "es", split="valid")


def test_malformed_tsv_lists_five_line_numbers_and_the_count():
    message = _raises_one_line(
        r"malformed\.tsv: 7 malformed row\(s\) at line\(s\) 3, 5, 6, 8, 9 and 2 more; expected 4 tab-separated fields",
        FIXTURES / "malformed.tsv",
        "en",
        "es",
    )
    assert "got 3 at line 3" in message


def test_malformed_jsonl_lists_line_numbers():
    _raises_one_line(
        r"malformed\.jsonl: 2 malformed row\(s\) at line\(s\) 2, 4; expected one JSON object per line \(bad JSON",
        FIXTURES / "malformed.jsonl",
        "en",
        "es",
    )


def test_malformed_csv_and_anki_rows_have_their_physical_line_numbers(tmp_path):
    csv_path = tmp_path / "bad.csv"
    # The quoted record spans lines 3-4, so the short record is on line 5.
    csv_path.write_text('en,es\nA.,B.\n"C,\nc.",D.\nE.\nF.,G.\n', encoding="utf-8")
    _raises_one_line(r"bad\.csv: 1 malformed row\(s\) at line\(s\) 5; expected 2 comma-separated", csv_path, "en", "es")
    anki = tmp_path / "bad.txt"
    anki.write_text("Go.\tVe.\nno tab here\nRun!\t¡Corre!\tattribution\textra\n", encoding="utf-8")
    _raises_one_line(r"bad\.txt: 2 malformed row\(s\) at line\(s\) 2, 3; expected source<TAB>target", anki, 0, 1)


def test_empty_header_only_and_all_empty_files(tmp_path):
    _raises_one_line(r"empty\.tsv: file is empty", FIXTURES / "empty.tsv", "en", "es")
    header_only = tmp_path / "header.tsv"
    header_only.write_text("en\tes\n", encoding="utf-8")
    _raises_one_line(r"header\.tsv: has a header \(line 1\) but no rows", header_only, "en", "es")
    blanks = tmp_path / "blank.tsv"
    blanks.write_text("en\tes\nHello.\t \n\tHola.\n\n", encoding="utf-8")
    with pytest.warns(UserWarning, match=r"skipped 2 pair\(s\).* at line\(s\) 2, 3\."):
        _raises_one_line(r"blank\.tsv: no pair with both source and target non-empty", blanks, "en", "es")


# --------------------------------------------------------------------------------------------
# make_dataset.


@pytest.fixture(scope="module")
def pairs():
    return read_pairs(TINY, "en", "es")


@pytest.fixture(scope="module")
def tokenizers(pairs):
    en, es = pairs
    return SubwordTokenizer.train(en, vocab_size=100), SubwordTokenizer.train(es, vocab_size=100)


def _batches(ds):
    return [(f["source_ids"].numpy(), f["target_ids"].numpy(), y.numpy()) for f, y in ds]


def _rows(matrix):
    """Rows of a padded batch without their trailing padding."""
    return [list(row[: np.max(np.nonzero(row)[0], initial=-1) + 1]) for row in matrix]


def test_batches_hold_bos_targets_eos_labels_and_zero_padding(pairs, tokenizers):
    (en, es), (src_tok, tgt_tok) = pairs, tokenizers
    ds = make_dataset(en, es, src_tok, tgt_tok, batch_size=8, shuffle=False, bucket_boundaries=[])
    batches = _batches(ds)
    assert [len(b[0]) for b in batches] == [8] * 7 + [4]
    src, tgt, lab = batches[0]
    assert src.dtype == tgt.dtype == lab.dtype == np.int32
    assert src.ndim == tgt.ndim == lab.ndim == 2 and tgt.shape == lab.shape
    source_ids, target_ids = src_tok.encode(en[:8]), tgt_tok.encode(es[:8])
    assert _rows(src) == source_ids
    assert _rows(tgt) == [[1] + y for y in target_ids]
    assert _rows(lab) == [y + [2] for y in target_ids]
    assert src.shape[1] == max(map(len, source_ids)) and tgt.shape[1] == max(map(len, target_ids)) + 1
    for row, y in zip(lab, target_ids):  # padding is 0 after the eos
        assert not row[len(y) + 1 :].any()


def test_truncation_keeps_room_for_bos_and_eos(pairs, tokenizers):
    (en, es), (src_tok, tgt_tok) = pairs, tokenizers
    ds = make_dataset(en, es, src_tok, tgt_tok, batch_size=60, max_source_length=5, max_target_length=6,
                      shuffle=False, bucket_boundaries=[])
    ((src, tgt, lab),) = _batches(ds)
    assert src.shape == (60, 5) and tgt.shape == lab.shape == (60, 6)
    y = [ids[:5] for ids in tgt_tok.encode(es)]
    assert [list(r) for r in src] == [ids[:5] for ids in src_tok.encode(en)]
    assert [list(r) for r in tgt] == [[1] + ids for ids in y]
    assert [list(r) for r in lab] == [ids + [2] for ids in y]


def test_bucketing_groups_by_target_length_and_keeps_every_pair(pairs, tokenizers):
    (en, es), (src_tok, tgt_tok) = pairs, tokenizers
    boundaries = [30, 45, 60]
    batches = _batches(make_dataset(en, es, src_tok, tgt_tok, batch_size=4, bucket_boundaries=boundaries))
    lengths = [[len(r) for r in _rows(lab)] for _, _, lab in batches]
    for batch in lengths:
        assert len({np.searchsorted(boundaries, n, side="right") for n in batch}) == 1
    expected = sorted(tuple(y + [2]) for y in tgt_tok.encode(es))
    assert sorted(tuple(r) for _, _, lab in batches for r in _rows(lab)) == expected
    assert len(batches) > len(en) // 4  # bucketing made more (smaller) batches than plain batching would


def test_length_multiples_pad_batches_to_few_shapes_and_change_no_pair(pairs, tokenizers):
    (en, es), (src_tok, tgt_tok) = pairs, tokenizers
    plain = _batches(make_dataset(en, es, src_tok, tgt_tok, batch_size=4, shuffle=False))
    padded = _batches(make_dataset(en, es, src_tok, tgt_tok, batch_size=4, shuffle=False, length_multiples=(16, 8)))
    assert len(padded) == len(plain)
    for (src, tgt, lab), (psrc, ptgt, plab) in zip(plain, padded):
        assert psrc.shape[1] % 16 == 0 and ptgt.shape[1] % 8 == 0 and ptgt.shape == plab.shape
        assert psrc.shape[1] - src.shape[1] < 16 and ptgt.shape[1] - tgt.shape[1] < 8
        assert _rows(psrc) == _rows(src) and _rows(ptgt) == _rows(tgt) and _rows(plab) == _rows(lab)
        assert not psrc[:, src.shape[1]:].any() and not plab[:, lab.shape[1]:].any()
    assert len({(b[0].shape[1], b[1].shape[1]) for b in padded}) < len({(b[0].shape[1], b[1].shape[1]) for b in plain})


def _pairs_and_keys(batches, bucket_by="target"):
    """Each batch's (source, label) rows and their sort keys (first length // LENGTH_STEP, second length)."""
    out = []
    for src, _, lab in batches:
        rows = list(zip(map(tuple, _rows(src)), map(tuple, _rows(lab))))
        keys = [(len(y) // data.LENGTH_STEP, len(x)) if bucket_by == "target" else (len(x) // data.LENGTH_STEP, len(y))
                for x, y in rows]
        out.append((rows, keys))
    return out


@pytest.mark.parametrize("bucket_by", ["target", "source"])
def test_default_batching_sorts_pools_by_both_lengths_and_keeps_every_pair(pairs, tokenizers, monkeypatch, bucket_by):
    (en, es), (src_tok, tgt_tok) = pairs, tokenizers
    monkeypatch.setattr(data, "POOL_BATCHES", 2)  # pools of 8 pairs: 7 full pools and one of 4
    batches = _batches(make_dataset(en, es, src_tok, tgt_tok, batch_size=4, shuffle=False, bucket_by=bucket_by))
    assert [len(b[0]) for b in batches] == [4] * 15
    in_order = [(tuple(x), tuple(y + [2])) for x, y in zip(src_tok.encode(en), tgt_tok.encode(es))]
    sorted_batches = _pairs_and_keys(batches, bucket_by)
    assert sorted(row for rows, _ in sorted_batches for row in rows) == sorted(in_order)  # every pair, still paired
    for pool in range(8):  # a pool: 8 pairs in input order, its batches in key order
        pool_batches = sorted_batches[2 * pool : 2 * pool + 2]
        keys = [k for _, batch_keys in pool_batches for k in batch_keys]
        assert keys == sorted(keys)
        assert sorted(r for rows, _ in pool_batches for r in rows) == sorted(in_order[8 * pool : 8 * pool + 8])
    # Less padding than batching the pairs in their order, on both sides.
    plain = _batches(make_dataset(en, es, src_tok, tgt_tok, batch_size=4, shuffle=False, bucket_boundaries=[]))
    for side in (0, 2):
        assert sum(b[side].size for b in batches) < sum(b[side].size for b in plain)


def test_default_batching_shuffles_the_batches_reproducibly(pairs, tokenizers):
    (en, es), (src_tok, tgt_tok) = pairs, tokenizers

    def epochs(seed):
        ds = make_dataset(en, es, src_tok, tgt_tok, batch_size=4, seed=seed)
        return [_pairs_and_keys(_batches(ds)) for _ in range(2)]

    first, again = epochs(0), epochs(0)
    assert first == again
    assert [rows for rows, _ in first[0]] != [rows for rows, _ in first[1]]  # a new order each epoch
    for epoch in first:
        assert sorted(r for rows, _ in epoch for r in rows) == sorted(r for rows, _ in first[0] for r in rows)
        for _, keys in epoch:  # each batch a run of the sorted pool (one pool here: 60 < 4 x POOL_BATCHES)
            assert keys == sorted(keys)
        assert [keys for _, keys in epoch] != sorted(keys for _, keys in epoch)  # the batches shuffled
    assert epochs(1) != first


def test_shuffling_is_deterministic_given_a_seed(pairs, tokenizers):
    (en, es), (src_tok, tgt_tok) = pairs, tokenizers

    def order(seed, epochs=1):
        ds = make_dataset(en, es, src_tok, tgt_tok, batch_size=10, seed=seed, bucket_boundaries=[])
        return [[tuple(r) for r in _rows(lab)] for _ in range(epochs) for _, _, lab in _batches(ds)]

    first, again = order(0, epochs=2), order(0, epochs=2)
    assert first == again
    assert first[:6] != first[6:]  # a new order each epoch
    assert sorted(sum(first[:6], [])) == sorted(sum(first[6:], []))
    assert order(1) != first[:6]


def test_make_dataset_argument_errors(pairs, tokenizers):
    (en, es), (src_tok, tgt_tok) = pairs, tokenizers
    with pytest.raises(ValueError, match="Received 60 sources and 59 targets"):
        make_dataset(en, es[:-1], src_tok, tgt_tok)
    with pytest.raises(ValueError, match="max_target_length=1; expected an integer >= 2"):
        make_dataset(en, es, src_tok, tgt_tok, max_target_length=1)
