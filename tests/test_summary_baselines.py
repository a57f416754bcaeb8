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
