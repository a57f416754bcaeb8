"""Parallel text: reading (source, target) pairs from local files and batching them with `tf.data`.

`read_pairs` reads `.tsv`, `.csv` and `.jsonl` files (each optionally gzipped) and Anki-style `.txt`
exports (`source<TAB>target<TAB>attribution`, no header). Every problem with a file is a
`DataError` with one line that names the file and, where there is one, the line.

`make_dataset` tokenizes the pairs with in-graph `SubwordTokenizer`s once, caches the ids, then
shuffles, batches pairs of similar lengths and pads with 0 (the pad id) every epoch:

    ({"source_ids": int32 (batch, Ts), "target_ids": int32 (batch, Tt)}, labels int32 (batch, Tt))

with `target_ids = [bos] + y` and `labels = y + [eos]` (teacher forcing; the model learns to emit eos).
"""

import warnings
from pathlib import Path

from keras_attn_zoo import record_files
from keras_attn_zoo.errors import DataError

FORMATS = ("tsv", "csv", "jsonl", "anki")
_SUFFIXES = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".txt": "anki"}
_FORMAT_ALIASES = {"txt": "anki", "ndjson": "jsonl"}
# Default batching: the shuffled pairs are taken POOL_BATCHES batches at a time, each pool sorted by
# length (the `bucket_by` side's in steps of LENGTH_STEP, then the other side's) and cut into
# batches, which are shuffled. Measured on the Bible training verses (29,942 pairs, batch 64):
# 94% of the target steps and 88% of the source steps are real, against 84% and 67% with the
# target-length buckets (8, 16, 24, 32, 48, 64, 96) used before; an epoch of the Bible recipe model
# trained 1.07-1.18x faster, one of the Debian summarizer (sorted by source first) 1.23x
# (benchmarks/batching.py, session 15; README "Length-sorted pools").
POOL_BATCHES, LENGTH_STEP = 128, 4


# --------------------------------------------------------------------------------------------
# Reading files.


def read_pairs(path, source, target, split=None, format=None, prefix=None):
    """Reads (source, target) text pairs from a local file.

    Args:
        path: a `.tsv`, `.csv` or `.jsonl` file, optionally gzipped (`.tsv.gz`, ...), whose first
            row (or keys) names the columns; or an Anki-style `.txt` file with no header whose lines
            are `source<TAB>target[<TAB>attribution]`.
        source: the source column: a name, or a 0-based index. For Anki files a name is ignored
            (the source is column 0) and an index picks the column.
        target: the target column, as `source` (column 1 for Anki files).
        split: keep only rows whose `split` column equals this (e.g. "train"); the file must have
            a `split` column.
        format: "tsv", "csv", "jsonl" or "anki"; by default taken from the file name.
        prefix: optional column put before each source as "PREFIX: SOURCE" (a short field the
            output depends on, e.g. a Debian package name before its description); an empty
            prefix leaves the source as it is.

    Returns:
        `(sources, targets)`: two lists of stripped strings of equal length. Pairs with an empty
        side are skipped and counted in a warning.

    Raises:
        DataError: missing file, bytes that are not UTF-8, empty file, missing column (a header
            without it, or JSONL records without the key: their line numbers are listed), malformed
            rows (their line numbers are listed), or nothing left after filtering.
    """
    path = Path(path)
    fmt = record_files.resolve_format(path, format, FORMATS, _SUFFIXES, _FORMAT_ALIASES)
    lines = record_files.read_lines(path, expected="a header row and pairs of texts")
    if fmt == "jsonl":
        records, columns = record_files.parse_jsonl(path, lines)
    elif fmt == "anki":
        records, columns = _parse_anki(path, lines)
    else:
        records, columns = record_files.parse_delimited(path, lines, fmt, expected="pairs of texts")

    prefix_key = None
    if fmt == "anki":
        if prefix is not None:
            raise DataError(f"{path}: Received prefix={prefix!r}, but Anki .txt files hold only source and target.")
        src_key = source if isinstance(source, int) else 0
        tgt_key = target if isinstance(target, int) else 1
        for key in (src_key, tgt_key):
            if not 0 <= key < 2:
                raise DataError(f"{path}: Received column index {key}; expected 0 or 1 (Anki files hold source, target).")
        if split is not None:
            raise DataError(f"{path}: Received split={split!r}, but Anki .txt files have no split column.")
    else:
        header = None if fmt == "jsonl" else record_files.header_line(lines)
        src_key = record_files.column(path, source, columns, line=header)
        tgt_key = record_files.column(path, target, columns, line=header)
        needed = [src_key, tgt_key]
        if prefix is not None:
            prefix_key = record_files.column(path, prefix, columns, purpose=" (the prefix)", line=header)
            needed.append(prefix_key)
        if split is not None:
            split_key = record_files.column(
                path, "split", columns, purpose=f" (needed by split={split!r})", line=header
            )
            needed.append(split_key)
        record_files.require_keys(path, records, list(dict.fromkeys(needed)))
        if split is not None:
            present = sorted({str(rec.get(split_key, "")).strip() for _, rec in records})
            records = [(n, rec) for n, rec in records if str(rec.get(split_key, "")).strip() == split]
            if not records:
                raise DataError(f"{path}: no rows with split={split!r}; splits present: {', '.join(present)}.")

    sources, targets, empty = [], [], []
    for lineno, rec in records:
        src, tgt = record_files.text(rec.get(src_key)), record_files.text(rec.get(tgt_key))
        head = record_files.text(rec.get(prefix_key)) if prefix_key is not None else ""
        if src and head:
            src = f"{head}: {src}"
        if src and tgt:
            sources.append(src)
            targets.append(tgt)
        else:
            empty.append(lineno)
    if empty:
        warnings.warn(
            f"{path}: skipped {len(empty)} pair(s) with an empty source or target, "
            f"at line(s) {record_files.list_lines(empty)}.",
            stacklevel=2,
        )
    if not sources:
        raise DataError(f"{path}: no pair with both source and target non-empty; expected at least one.")
    return sources, targets


def _parse_anki(path, lines):
    records, bad = [], []
    for number, text in lines:
        if not text.strip():
            continue
        fields = text.split("\t")
        if len(fields) in (2, 3):
            records.append((number, dict(enumerate(fields))))
        else:
            bad.append(number)
    if bad:
        raise DataError(
            f"{path}: {len(bad)} malformed row(s) at line(s) {record_files.list_lines(bad)}; expected "
            f"source<TAB>target[<TAB>attribution]."
        )
    return records, [0, 1]


# --------------------------------------------------------------------------------------------
# Batching.


def make_dataset(
    sources,
    targets,
    source_tokenizer,
    target_tokenizer,
    batch_size=64,
    max_source_length=None,
    max_target_length=None,
    shuffle=True,
    seed=0,
    bucket_boundaries=None,
    length_multiples=None,
    bucket_by="target",
):
    """Builds a `tf.data.Dataset` of padded teacher-forcing batches from text pairs.

    Args:
        sources, targets: lists of strings of equal length.
        source_tokenizer, target_tokenizer: `SubwordTokenizer`s (or anything with an in-graph
            `tokenize(strings) -> RaggedTensor` and `bos_id`/`eos_id`).
        batch_size: pairs per batch (the last batch of a pool or bucket may be smaller).
        max_source_length: truncate source ids to this many.
        max_target_length: truncate targets so `target_ids` and `labels` have at most this many ids
            (y keeps `max_target_length - 1` ids, then bos/eos is added).
        shuffle: shuffle the pairs every epoch (reproducibly from `seed`).
        seed: shuffling seed.
        bucket_boundaries: None (the default) batches pairs of similar lengths on both sides:
            `POOL_BATCHES` batches' worth of (shuffled) pairs at a time are sorted by the
            `bucket_by` side's length in steps of `LENGTH_STEP`, then by the other side's, cut
            into batches, and the batches shuffled (as OpenNMT-py's and fairseq's pools).
            A sequence of `bucket_by` lengths groups pairs into those buckets instead
            (`tf.data`'s `bucket_by_sequence_length`); an empty sequence (or False) batches
            the pairs in their (shuffled) order.
        bucket_by: "target" (translation: batches of similar target length first) or "source"
            (summarization: long sources, short targets; padding the sources is what costs).
        length_multiples: optional `(source, target)`: each batch is padded further, to lengths
            that are multiples of these (see `bounded_length`), so a backend that compiles per
            input shape (JAX) sees a few shapes instead of one per batch. None: no further padding.

    Returns:
        a dataset of `({"source_ids": (B, Ts), "target_ids": (B, Tt)}, labels (B, Tt))`, all int32,
        padded with 0. Tokenization runs once (the first epoch) and is cached.
    """
    import tensorflow as tf

    sources, targets = list(sources), list(targets)
    if len(sources) != len(targets):
        raise ValueError(f"Received {len(sources)} sources and {len(targets)} targets; expected equal numbers.")
    if not sources:
        raise ValueError("Received no pairs; expected at least one (source, target) pair.")
    _check_int("batch_size", batch_size, least=1, optional=False)
    _check_int("max_source_length", max_source_length, least=1)
    _check_int("max_target_length", max_target_length, least=2)  # room for bos/eos and one token
    bos, eos = target_tokenizer.bos_id, target_tokenizer.eos_id

    def tokenize(src, tgt):
        return source_tokenizer.tokenize(src), target_tokenizer.tokenize(tgt)

    def to_example(src, tgt):
        src = tf.cast(src, tf.int32)
        tgt = tf.cast(tgt, tf.int32)
        if max_source_length is not None:
            src = src[:max_source_length]
        if max_target_length is not None:
            tgt = tgt[: max_target_length - 1]
        target_ids = tf.concat([tf.constant([bos], tf.int32), tgt], axis=0)
        labels = tf.concat([tgt, tf.constant([eos], tf.int32)], axis=0)
        return {"source_ids": src, "target_ids": target_ids}, labels

    ds = tf.data.Dataset.from_tensor_slices((tf.constant(sources, tf.string), tf.constant(targets, tf.string)))
    ds = ds.batch(1024).map(tokenize, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
    ds = ds.map(to_example, num_parallel_calls=tf.data.AUTOTUNE).cache()
    if shuffle:
        ds = ds.shuffle(len(sources), seed=seed, reshuffle_each_iteration=True)

    if bucket_by not in ("target", "source"):
        raise ValueError(f"Received: bucket_by={bucket_by!r}; expected 'target' or 'source'.")
    boundaries = sorted({int(b) for b in (bucket_boundaries or ()) if int(b) > 1})
    longest = max_target_length if bucket_by == "target" else max_source_length
    if longest is not None:
        boundaries = [b for b in boundaries if b <= longest]

    def length(features, labels):
        return tf.shape(labels if bucket_by == "target" else features["source_ids"])[0]

    if bucket_boundaries is None:
        ds = _sorted_pools(ds, batch_size, bucket_by, shuffle, seed)
    elif boundaries:
        ds = ds.bucket_by_sequence_length(
            element_length_func=length,
            bucket_boundaries=boundaries,
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        )
    else:
        ds = ds.padded_batch(batch_size)
    if length_multiples:
        source_multiple, target_multiple = (int(m) for m in length_multiples)

        def pad(ids, multiple):
            return tf.pad(ids, [[0, 0], [0, -tf.shape(ids)[1] % multiple]])

        def pad_batch(features, labels):
            target_ids = pad(features["target_ids"], target_multiple)
            return {"source_ids": pad(features["source_ids"], source_multiple), "target_ids": target_ids}, pad(
                labels, target_multiple
            )

        ds = ds.map(pad_batch, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def _sorted_pools(ds, batch_size, bucket_by, shuffle, seed):
    """Batches of pairs of similar lengths on both sides (see `make_dataset`'s `bucket_boundaries`).

    `tf.data` buckets by one length only (`bucket_by_sequence_length`); sorting pools of examples
    by both lengths is what OpenNMT-py and fairseq do, written here in `tf.data` ops.
    """
    import tensorflow as tf

    def batches(features, labels):  # a pool: ragged (pool, None) tensors -> a dataset of its batches
        sources, targets = features["source_ids"].row_lengths(), labels.row_lengths()
        first, second = (targets, sources) if bucket_by == "target" else (sources, targets)
        order = tf.argsort(first // LENGTH_STEP * (tf.reduce_max(second) + 1) + second, stable=True)
        pool = tf.nest.map_structure(lambda t: tf.gather(t, order), (features, labels))
        starts = tf.data.Dataset.range(0, tf.size(order, out_type=tf.int64), batch_size)
        return starts.map(lambda start: tf.nest.map_structure(lambda t: t[start : start + batch_size].to_tensor(), pool))

    ds = ds.ragged_batch(batch_size * POOL_BATCHES).flat_map(batches)
    if shuffle:
        ds = ds.shuffle(POOL_BATCHES, seed=seed, reshuffle_each_iteration=True)
    return ds


def bounded_length(length, multiple):
    """`length` rounded up to a multiple of `multiple` (unchanged for `multiple` 0 or None).

    Backends that compile one program per input shape (JAX, XLA) see few shapes when batches are
    padded to such lengths; padding is masked, so it changes no loss or gradient.
    """
    if not multiple:
        return length
    return -(-length // multiple) * multiple


def _check_int(name, value, least, optional=True):
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        expected = f"an integer >= {least}" + (" or None" if optional else "")
        raise ValueError(f"Received: {name}={value!r}; expected {expected}.")
