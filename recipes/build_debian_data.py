"""Rebuilds debian_descriptions.tsv.gz (package description -> synopsis) from Debian's Translation-en.

Source: Debian bookworm's `main/i18n/Translation-en` index (bookworm-updates and -security are not
used). It is deb822: records separated by blank lines, each with `Package`, `Description-md5` and
`Description-en`, whose first line is the synopsis and whose continuation lines (each starting
with a space) are the long description. This script reproduces the shared file exactly (every row,
in order, with its split) from the index whose MD5 is e.g. b01cbbed65b70071f7c1e417122f9669
(bookworm 12.x as of 2025; 63,956 records):

- paragraphs: the continuation lines joined with newlines, split at each line that is exactly
  " ." between two other lines (Python's `str.split("\\n .\\n")`; of two " ." lines in a row the
  second stays as the text "."); white space folded in each; paragraphs that are empty or just
  "." are dropped. The description is the paragraphs joined by single spaces; the synopsis is
  the first line stripped.
- dropped: descriptions under 10 words or synopses under 2 (whitespace words), and records whose
  whole Description-en (synopsis and long text) repeats an earlier one; 60,609 rows remain.
- split: `sha256(first_paragraph.lower()[:200]) mod 100`: 0-1 test, 2-3 dev, the rest train
  (58,197 / 1,227 / 1,185). Packages that share a first paragraph (0ad, 0ad-data, ...) share a
  split. This rule was found by matching the shared file; the data README says only "a hash of
  the description's first paragraph".

Columns: `split  package  description  synopsis`, gzipped with mtime 0 (the same bytes each run).

Usage (fetching the index with apt-get into a private folder; needs network access to a Debian
mirror, leaves the system's apt lists and caches alone):

    python recipes/build_debian_data.py --out data
    python recipes/build_debian_data.py --translation Translation-en --out data
    python recipes/build_debian_data.py --out data --check ../shared/data/debian_descriptions.tsv.gz
"""

import argparse
import collections
import gzip
import hashlib
import io
import subprocess
import sys
import tempfile
from pathlib import Path

COLUMNS = ("split", "package", "description", "synopsis")
MIN_DESCRIPTION_WORDS = 10
MIN_SYNOPSIS_WORDS = 2
SPLIT_KEY_CHARS = 200
TEST_BUCKETS = range(0, 2)  # of 100
DEV_BUCKETS = range(2, 4)
MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


# --------------------------------------------------------------------------------------------
# Parsing and selecting (pure functions).


def parse_translation(text):
    """The records of a Translation-en index: a list of `{field: value}` dicts, in file order.

    A value's continuation lines are kept as they are (leading space included), after a newline,
    so `record["Description-en"]` is `"synopsis\\n line 1\\n .\\n line 2"`.

    Raises:
        ValueError: a line that is neither `Field: value` nor a continuation (names the line).
    """
    records, record, field = [], {}, None
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            if record:
                records.append(record)
            record, field = {}, None
        elif line[0] in " \t":
            if field is None:
                raise ValueError(f"line {number}: continuation line {line!r} before any field; expected 'Field: value'.")
            record[field] += "\n" + line
        else:
            field, colon, value = line.partition(":")
            if not colon or not field.strip():
                raise ValueError(f"line {number}: {line!r} is not 'Field: value'; expected a deb822 field.")
            field = field.strip()
            record[field] = value.strip()
    if record:
        records.append(record)
    return records


def description_parts(value):
    """`(synopsis, paragraphs)` of a Description-en value (the rule is in the module docstring)."""
    first, _, body = value.partition("\n")
    paragraphs = (" ".join(part.split()) for part in body.split("\n .\n"))
    return first.strip(), [p for p in paragraphs if p and p != "."]


def split_of(first_paragraph):
    """"train", "dev" or "test" from the SHA-256 of the lowercased first 200 characters."""
    key = first_paragraph.lower()[:SPLIT_KEY_CHARS].encode("utf-8")
    bucket = int(hashlib.sha256(key).hexdigest(), 16) % 100
    return "test" if bucket in TEST_BUCKETS else "dev" if bucket in DEV_BUCKETS else "train"


def select_rows(records):
    """`[(split, package, description, synopsis)]` from parsed records, filtered and deduplicated.

    Raises:
        ValueError: a record lacks Package or Description-en (names the record's position).
    """
    rows, seen = [], set()
    for index, record in enumerate(records):
        missing = [f for f in ("Package", "Description-en") if f not in record]
        if missing:
            raise ValueError(f"record {index + 1}: no {', '.join(missing)} field; fields present: {', '.join(record)}.")
        value = record["Description-en"]
        synopsis, paragraphs = description_parts(value)
        description = " ".join(paragraphs)
        if len(description.split()) < MIN_DESCRIPTION_WORDS or len(synopsis.split()) < MIN_SYNOPSIS_WORDS:
            continue
        if value in seen:
            continue
        seen.add(value)
        rows.append((split_of(paragraphs[0]), record["Package"], description, synopsis.replace("\t", " ")))
    return rows


def tsv_bytes(rows):
    """The gzipped TSV (header and rows), with mtime 0 so equal rows give equal bytes."""
    text = "\t".join(COLUMNS) + "\n" + "".join("\t".join(row) + "\n" for row in rows)
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz:
        gz.write(text.encode("utf-8"))
    return buffer.getvalue()


def read_rows(path):
    """The rows of an existing descriptions file (gzipped or not) as tuples, header dropped."""
    raw = Path(path).read_bytes()
    text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8")
    lines = text.rstrip("\n").split("\n")
    if tuple(lines[0].split("\t")) != COLUMNS:
        raise ValueError(f"{path}:1: header {lines[0]!r}; expected {chr(9).join(COLUMNS)!r}.")
    return [tuple(line.split("\t")) for line in lines[1:]]


def compare(rows, other):
    """One line comparing `rows` with `other` (rows of an existing file): counts, splits, differences."""
    def splits(table):
        counts = collections.Counter(row[0] for row in table)
        return "/".join(str(counts[s]) for s in ("train", "dev", "test"))

    differ = sum(a != b for a, b in zip(rows, other)) + abs(len(rows) - len(other))
    verdict = "identical" if differ == 0 else f"{differ} rows differ (position by position)"
    return (
        f"rows {len(rows)} vs {len(other)}; train/dev/test {splits(rows)} vs {splits(other)}; "
        f"{verdict}; {len(set(rows) - set(other))} rows only here, {len(set(other) - set(rows))} only there"
    )


# --------------------------------------------------------------------------------------------
# Fetching with apt-get.


def fetch_translation(directory):
    """Downloads bookworm main's Translation-en with apt-get into `directory`; returns its text.

    Uses its own sources list, lists folder and cache, and asks only for the translation index:
    the system's apt state is not touched. Command-line options win over apt.conf.d, so a
    configuration with `Acquire::Languages "none"` (Docker images) does not block it.
    """
    directory = Path(directory)
    directory.chmod(0o755)  # apt downloads as user _apt where it can
    lists, parts = directory / "lists", directory / "sources.list.d"
    (lists / "partial").mkdir(parents=True)
    parts.mkdir()
    sources = directory / "sources.list"
    sources.write_text(f"deb [signed-by={KEYRING}] {MIRROR} {SUITE} main\n", encoding="utf-8")
    options = {
        "Dir::Etc::SourceList": sources,
        "Dir::Etc::SourceParts": parts,
        "Dir::State::Lists": lists,
        "Dir::Cache": directory / "cache",
        "Dir::Cache::pkgcache": "",
        "Dir::Cache::srcpkgcache": "",
        "Acquire::Languages": "en",
        "Acquire::IndexTargets::deb::Packages::DefaultEnabled": "false",
        "Debug::NoLocking": "1",
    }
    command = ["apt-get", "update"] + [arg for key, value in options.items() for arg in ("-o", f"{key}={value}")]
    print("running:", " ".join(command), file=sys.stderr)
    subprocess.run(command, check=True)
    found = sorted(lists.glob(f"*_dists_{SUITE}_main_i18n_Translation-en*"))
    if not found:
        sys.exit(f"apt-get update wrote no {SUITE} main Translation-en to {lists}")
    # apt may keep the index compressed (.lz4, .gz, ...); apt-helper decompresses any of its formats.
    text = subprocess.run(
        ["/usr/lib/apt/apt-helper", "cat-file", str(found[0])], check=True, capture_output=True
    ).stdout
    return text.decode("utf-8")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("data"), help="output folder (default: data)")
    parser.add_argument("--translation", type=Path, help="a Translation-en file already downloaded (plain text)")
    parser.add_argument("--check", type=Path, help="compare the result with this existing file and print one line")
    args = parser.parse_args(argv)

    if args.translation:
        text = args.translation.read_text(encoding="utf-8")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            text = fetch_translation(tmp)
    rows = select_rows(parse_translation(text))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "debian_descriptions.tsv.gz"
    path.write_bytes(tsv_bytes(rows))
    counts = collections.Counter(row[0] for row in rows)
    print(f"wrote {path}: {len(rows)} rows, " + ", ".join(f"{s} {counts[s]}" for s in ("train", "dev", "test")), file=sys.stderr)
    if args.check:
        print(compare(rows, read_rows(args.check)))


if __name__ == "__main__":
    main()
