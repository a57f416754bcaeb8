"""recipes/build_debian_data.py on a small Translation-en snippet written for the test."""

import gzip
import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "recipes" / "build_debian_data.py"
spec = importlib.util.spec_from_file_location("build_debian_data", SCRIPT)
debian = importlib.util.module_from_spec(spec)
spec.loader.exec_module(debian)
FIXTURE = Path(__file__).parent / "fixtures" / "translation_en_tiny"

FOO = "Fooapp frobnicates foo files quickly and safely, keeping their metadata intact."


@pytest.fixture(scope="module")
def rows():
    return debian.select_rows(debian.parse_translation(FIXTURE.read_text(encoding="utf-8")))


def test_parse_translation_keeps_fields_and_continuation_lines():
    records = debian.parse_translation(FIXTURE.read_text(encoding="utf-8"))
    assert len(records) == 11
    assert records[0]["Package"] == "fooapp"
    assert records[0]["Description-md5"] == "00000000000000000000000000000001"
    assert records[0]["Description-en"].split("\n") == [
        "Fast frobnicator for foo files",
        " Fooapp frobnicates foo files quickly and",
        " safely, keeping   their metadata intact.",
        " .",
        " It supports batch mode.",
    ]


def test_parse_translation_names_a_malformed_line():
    with pytest.raises(ValueError, match=r"line 2: continuation line ' orphan' before any field"):
        debian.parse_translation("\n orphan\n")
    with pytest.raises(ValueError, match=r"line 3: 'no colon here' is not 'Field: value'"):
        debian.parse_translation("Package: a\nDescription-en: b\nno colon here\n")


def test_rows_filter_deduplicate_and_keep_file_order(rows):
    # Dropped: fooapp-copy (repeats fooapp's Description-en), tiny (9 words), oneword (1-word synopsis).
    assert [r[1] for r in rows] == [
        "fooapp", "fooapp-data", "leading-dot", "two-leading-dots", "verbatim",
        "libaccess-modifier-checker-java", "libacl1", "afl",
    ]
    assert rows[0][2:] == (FOO + " It supports batch mode.", "Fast frobnicator for foo files")


def test_paragraph_rule_and_its_quirks(rows):
    by_package = {r[1]: r for r in rows}
    # One leading " ." stays as text; the synopsis keeps its inner spaces (only stripped).
    assert by_package["leading-dot"][2].startswith(". Partial functions from the base library,")
    assert by_package["leading-dot"][2].endswith("messages. This package provides the documentation.")
    assert by_package["leading-dot"][3] == "Documentation for a safe library;  documentation"
    # Two leading " ." lines: the paragraph left is just "." and is dropped.
    assert by_package["two-leading-dots"][2].startswith("This package provides")
    # A verbatim "  ." (two spaces) is text, not a paragraph break.
    assert by_package["verbatim"][2] == (
        "The archive formats supported are: * old-style tar archives, . * zip archives. "
        "That is all it mounts, for now and probably forever."
    )
    assert debian.description_parts("s\n a\n .\n b")[1] == ["a", "b"]


def test_split_by_first_paragraph(rows):
    splits = {r[1]: r[0] for r in rows}
    # A family sharing its first paragraph shares its split.
    assert splits["fooapp"] == splits["fooapp-data"]
    # Three records of bookworm with their splits in the shared file: the hash is of the lowercased
    # first 200 characters (for libaccess-modifier-checker-java the whole paragraph would say train).
    assert splits["afl"] == "test"
    assert splits["libacl1"] == "dev"
    assert splits["libaccess-modifier-checker-java"] == "dev"
    assert debian.split_of("X" * 200 + " tail") == debian.split_of("x" * 200 + " other tail")


def test_tsv_bytes_repeat_and_check_line(rows, tmp_path):
    data = debian.tsv_bytes(rows)
    assert data == debian.tsv_bytes(rows)
    lines = gzip.decompress(data).decode("utf-8").split("\n")
    assert lines[0] == "split\tpackage\tdescription\tsynopsis"
    path = tmp_path / "d.tsv.gz"
    path.write_bytes(data)
    assert debian.read_rows(path) == rows
    same = debian.compare(rows, debian.read_rows(path))
    assert same.startswith("rows 8 vs 8; train/dev/test ") and "identical" in same
    changed = [rows[0][:3] + ("another synopsis",)] + rows[1:-1]
    line = debian.compare(rows, changed)
    assert "rows 8 vs 7" in line and "2 rows differ" in line and "\n" not in line


def test_main_with_a_translation_file_and_check(tmp_path, capsys):
    debian.main(["--translation", str(FIXTURE), "--out", str(tmp_path)])
    out = tmp_path / "debian_descriptions.tsv.gz"
    debian.main(["--translation", str(FIXTURE), "--out", str(tmp_path / "again"), "--check", str(out)])
    printed = capsys.readouterr().out.strip().split("\n")
    assert printed == [
        "rows 8 vs 8; train/dev/test 5/2/1 vs 5/2/1; identical; 0 rows only here, 0 only there"
    ]
