"""Summaries that need no model: the first k words, and the first clause of the text.

A summarizer is only worth its training if it beats these, measured in the same table
(`keras_attn_zoo.evaluation.summary_scores`). Both are pure functions on one string; white space
is folded to single spaces in what they return.

First clause, the rule (`first_clause`):

1. The first sentence: the words up to and including the first word that ends a sentence, a word
   ending in ".", "!" or "?" that holds a letter or digit and is not an abbreviation. An
   abbreviation is a word with a second "." inside it ("e.g.", "i.e.", "A.D.", "U.S.") or one
   of `ABBREVIATIONS` ("etc.", "vs.", ...). So "0 A.D. is a game." is one sentence, and
   "Dr. No" is not split at "Dr.". A text with no sentence end is one sentence.
2. Within it, the words before the first clause boundary that has a word before it: after a
   word ending in ",", ";" or ":"; before a dash standing alone ("-", "--", "–", "—"); before a
   word opening a parenthesis "(" or bracket "["; before the relative words "which", "that",
   "who", "whose" (which open a relative or subordinate clause: "a library that parses JSON"
   -> "a library").
3. The sentence end mark (".", "!", "?") and the boundary mark (",", ";", ":") are removed
   from the last word; abbreviation periods stay.

This is a plain grammatical rule, not fitted to any score.
"""

import numbers

# Abbreviations without an inner period, lowercased.
ABBREVIATIONS = frozenset({"etc.", "vs.", "cf.", "approx.", "incl.", "esp.", "resp.", "dr.", "mr.", "mrs.", "ms.", "st."})
SENTENCE_ENDS = (".", "!", "?")
CLAUSE_ENDS = (",", ";", ":")
DASHES = frozenset({"-", "--", "\u2013", "\u2014"})
RELATIVE_WORDS = frozenset({"which", "that", "who", "whose"})


def lead_length(summaries):
    """k for lead-k: the lower median length of `summaries` in whitespace words (an integer)."""
    import statistics

    return statistics.median_low(len(summary.split()) for summary in summaries)


def lead_k(text, k):
    """The first `k` whitespace-separated words of `text`, joined by single spaces.

    A text of `k` words or fewer comes back whole (white space folded); an empty text gives "".

    Raises:
        ValueError: `k` is not a positive integer.
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"Received: k={k!r}; expected a positive integer.")
    return " ".join(_words(text)[:k])


def is_abbreviation(word):
    """True for a word whose final "." marks an abbreviation: "e.g.", "A.D.", "etc." (any case)."""
    return word.endswith(".") and ("." in word[:-1] or word.lower() in ABBREVIATIONS)


def ends_sentence(word):
    """True for a word that ends a sentence: it ends in ".", "!" or "?", holds a letter or digit,
    and is not an abbreviation."""
    return word.endswith(SENTENCE_ENDS) and any(c.isalnum() for c in word) and not is_abbreviation(word)


def first_sentence(text):
    """The words of `text` up to and including the first that `ends_sentence` (all, if none does)."""
    words = _words(text)
    for index, word in enumerate(words):
        if ends_sentence(word):
            return words[: index + 1]
    return words


def first_clause(text):
    """The first clause of the first sentence of `text` (the rule is in the module docstring).

    Example: "Foo is a fast library, written in C, that parses JSON. It ..." -> "Foo is a fast
    library"; "0 A.D. (pronounced ...) is a game." -> "0 A.D."; "" -> "".
    """
    words = first_sentence(text)
    if words and ends_sentence(words[-1]):
        words[-1] = words[-1][:-1]
    for index, word in enumerate(words):
        if index > 0 and (
            word in DASHES or word.startswith(("(", "[")) or word.lower() in RELATIVE_WORDS
        ):
            words = words[:index]
            break
        if word.endswith(CLAUSE_ENDS) and index < len(words) - 1:
            words = words[: index + 1]
            words[-1] = word[:-1]
            break
    if words and words[-1].endswith(CLAUSE_ENDS):
        words[-1] = words[-1][:-1]
    return " ".join(w for w in words if w)


def _words(text):
    if not isinstance(text, str):
        raise ValueError(f"Received: text of type {type(text).__name__}; expected a string.")
    return text.split()
