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


# --------------------------------------------------------------------------------------------
# Captions that need no decoder: the most frequent training caption, and the caption of the
# nearest training image in the encoder's feature space. A captioner must beat both, scored the
# same way (`keras_attn_zoo.caption_evaluation.caption_scores`).


def most_frequent_caption(captions):
    """The caption that occurs most often in `captions` (a tie: the one seen first)."""
    captions = list(captions)
    if not captions:
        raise ValueError("Received: no captions; expected at least one training caption.")
    counts = {}
    for caption in captions:
        counts[caption] = counts.get(caption, 0) + 1
    return max(counts, key=counts.get)  # max keeps the first of equal counts, in insertion order


def pooled(grids):
    """Mean over the grid positions: (n, positions, channels) -> (n, channels) float32."""
    import numpy as np

    grids = np.asarray(grids, dtype=np.float32)
    if grids.ndim != 3:
        raise ValueError(f"Received: grids of shape {grids.shape}; expected (images, positions, channels).")
    return grids.mean(axis=1)


def nearest_captions(train_features, train_captions, features, chunk=1024):
    """For each row of `features`, the caption of the most similar training image (cosine).

    Args:
        train_features: (n_train, d) pooled features of the training images.
        train_captions: per training image its caption, or a list of them (the first is used).
        features: (n, d) pooled features of the images to caption.

    Returns:
        a list of n captions. An all-zero feature vector matches nothing better than any other:
        it gets the first training image's caption.
    """
    import numpy as np

    train = np.asarray(train_features, dtype=np.float32)
    queries = np.asarray(features, dtype=np.float32)
    if len(train) != len(train_captions) or not len(train):
        raise ValueError(
            f"Received: {len(train)} training feature rows and {len(train_captions)} captions; "
            "expected the same number, at least one."
        )
    if queries.ndim != 2 or queries.shape[1:] != train.shape[1:]:
        raise ValueError(f"Received: features of shape {queries.shape}; expected (n, {train.shape[1]}).")

    def unit(x):
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        return x / np.where(norm == 0, 1, norm)

    train = unit(train)
    best = np.concatenate(
        [np.argmax(unit(queries[i : i + chunk]) @ train.T, axis=1) for i in range(0, len(queries), chunk)]
    ) if len(queries) else np.zeros(0, int)
    first = [c if isinstance(c, str) else c[0] for c in train_captions]
    return [first[j] for j in best]
