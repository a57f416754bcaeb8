"""Local record files read line by line: UTF-8 text (optionally gzipped) split into records that keep
their line numbers, so every problem can be one `DataError` line naming the file and the lines.

Shared by the text-pair readers (`keras_attn_zoo.data`) and the caption readers
(`keras_attn_zoo.caption_data`):

    read_lines(path, expected)          -> [(line_number, text)]
    parse_delimited(path, lines, fmt, expected)  -> [(line_number, {column: text})], columns   (TSV, CSV)
    parse_jsonl(path, lines)            -> [(line_number, {key: value})], keys
"""

import csv
import gzip
import json
import zlib

from keras_attn_zoo.errors import DataError

MAX_LISTED = 5


def resolve_format(path, format, formats, suffixes, aliases=None):
    """The format named by `format` (checked against `formats`), else by the file's suffix (`.gz` ignored)."""
    aliases = aliases or {}
    if format is not None:
        fmt = aliases.get(format, format)
        if fmt not in formats:
            raise ValueError(f"Received: format={format!r}; expected one of {', '.join(map(repr, formats))}.")
        return fmt
    names = [s.lower() for s in path.suffixes]
    if names and names[-1] == ".gz":
        names = names[:-1]
    fmt = suffixes.get(names[-1] if names else "")
    if fmt is None:
        raise DataError(
            f"{path}: cannot tell the format from the name; expected {', '.join(sorted(suffixes))} "
            f"(optionally .gz), or pass format= one of {', '.join(formats)}."
        )
    return fmt


def read_lines(path, expected):
    """Returns [(line_number, text)] without line ends; checks the file exists, gunzips, decodes UTF-8.

    `expected` says what a non-empty file holds, for the error on an empty one.
    """
    if not path.exists():
        raise DataError(f"{path}: no such file.")
    if not path.is_file():
        raise DataError(f"{path}: not a file; expected a data file.")
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    lines = []
    try:
        with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as f:
            for number, raw in enumerate(f, start=1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    bad = raw[error.start : error.start + 1].hex()
                    raise DataError(
                        f"{path}:{number}: byte 0x{bad} at column {error.start + 1} is not UTF-8; expected UTF-8 text."
                    ) from None
                if number == 1:
                    text = text.removeprefix("\ufeff")
                lines.append((number, text.rstrip("\r\n")))
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: cannot be read as {'gzip' if gzipped else 'a file'} ({error}).") from None
    if not any(text.strip() for _, text in lines):
        raise DataError(f"{path}: file is empty; expected {expected}.")
    return lines


def parse_delimited(path, lines, fmt, expected):
    """TSV (plain tab split, no quoting) or CSV (RFC 4180 quoting) with a header row.

    `expected` says what the rows hold, for the error on a file with a header and no rows.
    """
    nonblank = [(n, t) for n, t in lines if t.strip()]
    if fmt == "tsv":
        rows = [(n, t.split("\t")) for n, t in nonblank]
        what = "tab-separated"
    else:
        rows = []
        reader = csv.reader(t + "\n" for _, t in lines)
        start = 1
        try:
            for fields in reader:
                if fields:
                    rows.append((lines[start - 1][0], fields))
                start = reader.line_num + 1
        except csv.Error as error:
            raise DataError(f"{path}:{reader.line_num}: malformed CSV ({error}).") from None
        what = "comma-separated"
    (header_line, header), body = rows[0], rows[1:]
    header = [h.strip() for h in header]
    if not body:
        raise DataError(f"{path}: has a header (line {header_line}) but no rows; expected {expected}.")
    bad = [n for n, fields in body if len(fields) != len(header)]
    if bad:
        first = next(len(f) for n, f in body if n == bad[0])
        raise DataError(
            f"{path}: {len(bad)} malformed row(s) at line(s) {list_lines(bad)}; expected {len(header)} "
            f"{what} fields as in the header, got {first} at line {bad[0]}."
        )
    records = [(n, dict(zip(header, fields))) for n, fields in body]
    return records, header


def parse_jsonl(path, lines):
    """One JSON object per non-blank line; the keys seen, in first-seen order, are the columns."""
    records, bad, reasons, columns = [], [], [], {}
    for number, text in lines:
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as error:
            bad.append(number)
            reasons.append(f"bad JSON: {error.msg}")
            continue
        if not isinstance(obj, dict):
            bad.append(number)
            reasons.append(f"a JSON {type(obj).__name__}, not an object")
            continue
        columns.update(dict.fromkeys(obj))
        records.append((number, obj))
    if bad:
        raise DataError(
            f"{path}: {len(bad)} malformed row(s) at line(s) {list_lines(bad)}; expected one JSON object "
            f"per line ({reasons[0]} at line {bad[0]})."
        )
    return records, list(columns)


def column(path, name, columns, purpose="", line=None):
    """The key of column `name` (a name, or a 0-based index into `columns`).

    `line`: the header's line number, named in the error (None for files without a header).
    """
    where = f"{path}:{line}" if line is not None else f"{path}"
    if isinstance(name, int) and not isinstance(name, bool):
        if not 0 <= name < len(columns):
            raise DataError(f"{where}: Received column index {name}; the file has {len(columns)} columns.")
        return columns[name]
    if name not in columns:
        raise DataError(f"{where}: no column {name!r}{purpose}; columns present: {', '.join(map(str, columns))}.")
    return name


def header_line(lines):
    """The line number of the header of a delimited file: its first non-blank line."""
    return next((number for number, text in lines if text.strip()), None)


def require_keys(path, records, keys):
    """Checks every record has every key in `keys` (JSONL records may lack some): one error naming
    the file, the key and the lines of the records without it."""
    for key in keys:
        lacking = [number for number, record in records if key not in record]
        if lacking:
            raise DataError(
                f"{path}: {len(lacking)} record(s) without the key {key!r} at line(s) {list_lines(lacking)}; "
                f"expected every record to have {', '.join(map(repr, keys))}."
            )


def text(value):
    """A field as a stripped string ('' for None; JSON lists and objects as JSON)."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False)
    return str(value).strip()


def list_lines(numbers):
    """'3, 5, 6, 8, 9 and 2 more': the first few line numbers and how many others."""
    shown = ", ".join(str(n) for n in numbers[:MAX_LISTED])
    return shown + (f" and {len(numbers) - MAX_LISTED} more" if len(numbers) > MAX_LISTED else "")
