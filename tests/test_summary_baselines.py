"""keras_attn_zoo.baselines: lead-k and first-clause summaries, including their edge cases."""

import pytest

from keras_attn_zoo import baselines


# --- lead_k ----------------------------------------------------------------------------------


def test_lead_k_takes_the_first_k_whitespace_words():
    assert baselines.lead_k("GNU Emacs is an extensible, customizable editor.", 4) == "GNU Emacs is an"
    # Words are whitespace-separated: punctuation stays attached, runs of spaces fold.
    assert baselines.lead_k("  Real-time   strategy,\tgame\nof war", 3) == "Real-time strategy, game"


def test_lead_k_of_short_and_empty_text():
    assert baselines.lead_k("two words", 6) == "two words"
    assert baselines.lead_k("", 6) == ""
    assert baselines.lead_k("   ", 6) == ""


@pytest.mark.parametrize("k", [0, -2, 2.0, True, None])
def test_lead_k_rejects_k_that_is_not_a_positive_integer(k):
    with pytest.raises(ValueError, match=r"Received: k=.*; expected a positive integer"):
        baselines.lead_k("some text", k)


def test_lead_k_rejects_non_strings():
    with pytest.raises(ValueError, match="Received: text of type list; expected a string"):
        baselines.lead_k(["a", "b"], 1)


# --- first_clause ----------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    # Cut at the first clause boundary of the first sentence.
    ("Foo is a fast library, written in C. It parses JSON.", "Foo is a fast library"),
    ("Foo parses JSON; it is fast.", "Foo parses JSON"),
    ("Foo provides: a parser and a writer.", "Foo provides"),
    ("Foo - a JSON parser written in C.", "Foo"),
    ("Foo -- a JSON parser.", "Foo"),
    ("Foo (formerly Bar) parses JSON.", "Foo"),
    ("Foo is a library that parses JSON.", "Foo is a library"),
    ("Foo is a tool which converts files.", "Foo is a tool"),
    # The sentence ends before any boundary: the end mark goes.
    ("Foo parses JSON. It is fast, small.", "Foo parses JSON"),
    ("Is Foo fast? Yes, very.", "Is Foo fast"),
    # No sentence end and no boundary: the whole text.
    ("Foo parses JSON quickly", "Foo parses JSON quickly"),
    # Abbreviations do not end the sentence; their periods stay.
    ("0 A.D. (pronounced zero ey-dee) is a game.", "0 A.D."),
    ("Tools for i.e. formats etc. and more. Second sentence, here.", "Tools for i.e. formats etc. and more"),
    ("Codecs e.g. for FLAC. Second.", "Codecs e.g. for FLAC"),
    ("Supports Python 3.11 and later. Second.", "Supports Python 3.11 and later"),
    # A boundary needs a word before it; a sentence end needs a letter or digit.
    ("(Unofficial) build of Foo.", "(Unofficial) build of Foo"),
    ("That is Foo. Second.", "That is Foo"),
    (". Partial functions, made safe.", ". Partial functions"),
    # A comma inside a word is no boundary; a boundary mark on the last word goes.
    ("Reads 1,000 files per second", "Reads 1,000 files per second"),
    ("Foo:", "Foo"),
    # Empty text.
    ("", ""),
    ("   ", ""),
])
def test_first_clause(text, expected):
    assert baselines.first_clause(text) == expected


def test_first_sentence_and_abbreviations():
    assert baselines.first_sentence("Uses e.g. zlib. More text.") == ["Uses", "e.g.", "zlib."]
    assert baselines.is_abbreviation("E.G.") and baselines.is_abbreviation("Etc.")
    assert not baselines.is_abbreviation("zlib.")
    assert not baselines.ends_sentence("...") and baselines.ends_sentence("done!")


# --- recipes/summarization_baselines.py ------------------------------------------------------


def _load_recipe():
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "recipes" / "summarization_baselines.py"
    spec = importlib.util.spec_from_file_location("summarization_baselines", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_baselines_recipe_prints_k_and_a_row_per_baseline(tmp_path, capsys):
    pytest.importorskip("rouge_score")
    recipe = _load_recipe()
    assert baselines.lead_length(["a b", "a b c", "a b c d", "a b c d e"]) == 3  # the lower median
    data = tmp_path / "d.tsv"
    data.write_text(
        "split\tpackage\tdescription\tsynopsis\n"
        "train\tt1\tFoo parses JSON files quickly, in C.\tJSON parser\n"
        "dev\td1\tBar draws charts. It is slow.\tchart drawing tool\n"
        "dev\td2\tBaz plays music.\tmusic player\n"
        "test\tx1\tQux edits images, fast.\tQux image editor\n",
        encoding="utf-8",
    )
    recipe.main(["--data", str(data), "--split", "test"])
    lines = capsys.readouterr().out.strip().split("\n")
    assert "1 pairs; k = 2 " in lines[0]
    assert lines[1].split() == ["R-1", "R-2", "R-L", "new-1", "new-2", "new-3", "rep-3", "words", "rare"]
    # lead-2 "Qux edits" vs "Qux image editor": ROUGE-1 F1 2 * (1/2 * 1/3) / (1/2 + 1/3) = 40.
    assert lines[2].split()[:2] == ["lead-2", "40.00"]
    # first clause "Qux edits images": "qux", "imag" match (stemmed): 2 * (2/3 * 2/3) / (4/3) = 66.67;
    # rare words: qux and images (never in train synopses, in source and reference), both kept.
    assert lines[3].split()[:3] == ["first", "clause", "66.67"] and lines[3].split()[-1] == "100.00"


# -- Caption baselines -------------------------------------------------------------------------


def test_most_frequent_caption_and_its_ties():
    from keras_attn_zoo.baselines import most_frequent_caption

    assert most_frequent_caption(["a cat", "a dog", "a dog", "a cat", "a bird", "a dog"]) == "a dog"
    assert most_frequent_caption(["a cat", "a dog", "a dog", "a cat"]) == "a cat"  # tie: the first seen
    with pytest.raises(ValueError, match="no captions"):
        most_frequent_caption([])


def test_nearest_captions_by_cosine_of_pooled_grids():
    import numpy as np

    from keras_attn_zoo.baselines import nearest_captions, pooled

    grids = np.array([[[1, 0], [1, 0]], [[0, 2], [0, 4]], [[1, 1], [3, 3]]], dtype=np.float32)
    train = pooled(grids)
    assert train.tolist() == [[1, 0], [0, 3], [2, 2]]
    captions = [["a red icon", "red"], "a blue icon", ["a purple icon"]]
    # cosine, not distance: (10, 1) is nearest (1, 0) although (2, 2) is closer in Euclid
    queries = np.array([[10, 1], [0.1, 5], [4, 5], [0, 0]], dtype=np.float32)
    assert nearest_captions(train, captions, queries, chunk=2) == ["a red icon", "a blue icon", "a purple icon", "a red icon"]
    with pytest.raises(ValueError, match="3 training feature rows and 2 captions"):
        nearest_captions(train, captions[:2], queries)
