"""Summary figures in keras_attn_zoo.evaluation: novel n-grams, repeated trigrams, rare-word recall,
and the summary_scores dict, on corpora small enough to count by hand."""

import json
import subprocess
import sys

import pytest

from keras_attn_zoo import evaluation

pytest.importorskip("rouge_score")

# Two examples. Words (rouge-score tokens, lowercased):
#   A source:     the cat sat on the mat        A output: the cat sat on a mat
#   B source:     dogs bark loudly              B output: dogs bark
# Output 1-grams: A 6 (novel: "a"), B 2 (none)                           -> 1/8 = 12.5
# Output 2-grams: A 5 (novel: "on a", "a mat"), B 1 (none)              -> 2/6 = 33.33
# Output 3-grams: A 4 (novel: "sat on a", "on a mat"), B 0              -> 2/4 = 50.0
SOURCES = ["The cat sat on the mat.", "Dogs bark loudly."]
OUTPUTS = ["The cat sat on a mat.", "Dogs bark"]


# --- novel_ngrams ----------------------------------------------------------------------------


def test_novel_ngrams_by_hand():
    result = evaluation.novel_ngrams(SOURCES, OUTPUTS)
    assert result["novel_1grams"] == 12.5
    assert result["novel_2grams"] == 33.33
    assert result["novel_3grams"] == 50.0
    assert result["n"] == 2
    assert result["raw"]["novel_2grams"] == pytest.approx(100 * 2 / 6)
    assert result["raw"]["ngrams"] == {"1": 8, "2": 6, "3": 4}


def test_novel_ngrams_pool_over_the_corpus_not_average_per_example():
    # Averaging per example would give 1-grams (1/6 + 0) / 2 = 8.33 and 2-grams (2/5 + 0) / 2 = 20.
    result = evaluation.novel_ngrams(SOURCES, OUTPUTS, n=(1, 2))
    assert (result["novel_1grams"], result["novel_2grams"]) == (12.5, 33.33)
    assert "novel_3grams" not in result


def test_novel_ngrams_count_occurrences_not_distinct_ngrams():
    # "new" three times, "words" once: 3 of 4 occurrences are novel (distinct n-grams: 1 of 2).
    assert evaluation.novel_ngrams(["words"], ["new new new words"], n=1)["novel_1grams"] == 75.0


def test_novel_ngrams_use_rouge_words_without_stemming():
    # Case and punctuation do not matter ("Real-time" is "real", "time")...
    assert evaluation.novel_ngrams(["GNU real time Emacs"], ["gnu Real-time, EMACS!"], n=1)["novel_1grams"] == 0.0
    # ...but no stemmer: "library" is not "libraries".
    assert evaluation.novel_ngrams(["shared libraries"], ["shared library"], n=1)["novel_1grams"] == 50.0


def test_novel_ngrams_of_outputs_too_short_is_none():
    result = evaluation.novel_ngrams(["a b c"], ["a b"], n=3)
    assert result["novel_3grams"] is None
    assert result["raw"]["ngrams"] == {"3": 0}


@pytest.mark.parametrize("n", [0, -1, (), (1, 0), 1.5, True])
def test_novel_ngrams_rejects_bad_orders(n):
    with pytest.raises(ValueError, match=r"Received: n=.*; expected a positive integer"):
        evaluation.novel_ngrams(SOURCES, OUTPUTS, n=n)


def test_novel_ngrams_needs_one_source_per_output():
    with pytest.raises(ValueError, match="Received: 1 sources and 2 hypotheses; expected the same number"):
        evaluation.novel_ngrams(SOURCES[:1], OUTPUTS)


# --- repeated_trigrams -----------------------------------------------------------------------

# "the the the the": 2 trigrams, the 2nd repeats the 1st             -> 1 of 2
# "a b a b a":       "a b a", "b a b", "a b a": the 3rd repeats        -> 1 of 3
# "one two three":   1 trigram                                          -> 0 of 1
# Pooled: 2 of 6 = 33.33.
REPEATING = ["the the the the", "a b a b a", "one two three"]


def test_repeated_trigrams_by_hand():
    result = evaluation.repeated_trigrams(REPEATING)
    assert result["repeated_trigrams"] == 33.33
    assert result["raw"] == {"repeated_trigrams": pytest.approx(100 / 3), "trigrams": 6}
    assert result["n"] == 3


def test_repeated_trigrams_count_only_later_occurrences_pooled():
    # Counting every occurrence of a repeated trigram would give 4 of 6 (66.67); averaging per
    # output would give (50 + 33.33 + 0) / 3 = 27.78.
    assert evaluation.repeated_trigrams(REPEATING)["repeated_trigrams"] == 33.33


def test_repeated_trigrams_do_not_cross_outputs():
    assert evaluation.repeated_trigrams(["a b c", "a b c"])["repeated_trigrams"] == 0.0
    assert evaluation.repeated_trigrams(["", "a b"])["repeated_trigrams"] is None


# --- rare_word_recall ------------------------------------------------------------------------

# Training targets, word counts: library 3, for 3, json 2, tool 2, parsing 1, images 1.
# threshold=2: rare = fewer than 2 = parsing, images, and every unseen word.
TRAINING = ["library for parsing json", "library for images", "tool for json", "library tool"]
# Example 1: reference words also in the source: fast, json, parsing, library; rare: fast,
#            parsing (json has 2). Output "json library" reproduces neither: 0 of 2.
# Example 2: reference words also in the source: gimp, images, photos ("edit" is not in the
#            source: "edits" is another word); all rare. Output has gimp, images: 2 of 3.
# Pooled: 2 of 5 = 40.0.
RARE_SOURCES = ["yajl is a fast JSON parsing library written in C.", "GIMP edits images and photos."]
RARE_OUTPUTS = ["json library", "edits images with gimp"]
RARE_REFERENCES = ["Fast JSON parsing library", "GIMP: edit images, images, photos"]


def test_rare_word_recall_by_hand():
    result = evaluation.rare_word_recall(RARE_SOURCES, RARE_OUTPUTS, RARE_REFERENCES, TRAINING, threshold=2)
    assert result["rare_word_recall"] == 40.0
    assert result["rare_words"] == 5
    assert result["raw"] == {"rare_word_recall": 40.0, "rare_words": 5, "recalled": 2}


def test_rare_word_recall_definition_is_pinned():
    args = (RARE_SOURCES, RARE_OUTPUTS, RARE_REFERENCES, TRAINING)
    # Pooled, not per-example (0 + 66.67) / 2 = 33.33; presence, not frequency ("images" twice
    # in reference 2 would make it 3 of 6 = 50); only words in the source ("edit" would make it
    # 2 of 6 = 33.33); "fewer than" the threshold (json, seen twice, is not rare at 2).
    assert evaluation.rare_word_recall(*args, threshold=2)["rare_word_recall"] == 40.0
    # At threshold 3 json is rare too (and reproduced): 3 of 6.
    at_3 = evaluation.rare_word_recall(*args, threshold=3)
    assert (at_3["rare_word_recall"], at_3["rare_words"]) == (50.0, 6)


def test_rare_word_recall_without_rare_words_is_none():
    result = evaluation.rare_word_recall(["library tool"], ["library"], ["library tool"], TRAINING, threshold=1)
    assert result["rare_word_recall"] is None
    assert result["rare_words"] == 0


@pytest.mark.parametrize("threshold", [0, 2.5, True, None])
def test_rare_word_recall_rejects_bad_threshold(threshold):
    with pytest.raises(ValueError, match=r"Received: threshold=.*; expected a positive integer"):
        evaluation.rare_word_recall(RARE_SOURCES, RARE_OUTPUTS, RARE_REFERENCES, TRAINING, threshold=threshold)


def test_rare_word_recall_needs_aligned_lists_and_strings():
    with pytest.raises(ValueError, match="Received: 2 sources and 1 references"):
        evaluation.rare_word_recall(RARE_SOURCES, RARE_OUTPUTS, RARE_REFERENCES[:1], TRAINING)
    with pytest.raises(ValueError, match=r"Received: training_targets of type str"):
        evaluation.rare_word_recall(RARE_SOURCES, RARE_OUTPUTS, RARE_REFERENCES, "library for json")


# --- summary_scores --------------------------------------------------------------------------


def test_summary_scores_gathers_every_figure():
    result = evaluation.summary_scores(RARE_SOURCES, RARE_OUTPUTS, RARE_REFERENCES, training_targets=TRAINING, threshold=2)
    rouge = evaluation.rouge_scores(RARE_OUTPUTS, RARE_REFERENCES, rouge_types=("rouge1", "rouge2", "rougeL"))
    novel = evaluation.novel_ngrams(RARE_SOURCES, RARE_OUTPUTS)
    assert {k: result[k] for k in ("rouge1", "rouge2", "rougeL")} == {k: rouge[k] for k in ("rouge1", "rouge2", "rougeL")}
    assert {k: result[k] for k in ("novel_1grams", "novel_2grams", "novel_3grams")} == {
        k: novel[k] for k in ("novel_1grams", "novel_2grams", "novel_3grams")
    }
    assert result["repeated_trigrams"] == 0.0
    assert result["mean_length"] == 3.0  # (2 + 4) / 2 words
    assert (result["rare_word_recall"], result["rare_words"]) == (40.0, 5)
    assert result["n"] == 2
    assert result["raw"]["rouge1"] == rouge["raw"]["rouge1"]
    assert result["raw"]["novel_1grams"] == novel["raw"]["novel_1grams"]
    assert json.loads(json.dumps(result)) == result


def test_summary_scores_rounds_and_keeps_raw():
    # Output 1 against reference 1: "json library" vs "fast json parsing library": ROUGE-1 F1
    # 2 * (2/2 * 2/4) / (2/2 + 2/4) = 66.67.
    result = evaluation.summary_scores(RARE_SOURCES[:1], RARE_OUTPUTS[:1], RARE_REFERENCES[:1])
    assert result["rouge1"] == 66.67
    assert result["raw"]["rouge1"]["fmeasure"] == pytest.approx(200 / 3)
    assert "rare_word_recall" not in result and "rare_words" not in result


def test_summary_scores_accept_an_empty_summary_as_zero():
    result = evaluation.summary_scores(["a long text about dogs"], [""], ["dogs"])
    assert (result["rouge1"], result["rouge2"], result["rougeL"]) == (0.0, 0.0, 0.0)
    assert result["mean_length"] == 0.0
    assert result["novel_1grams"] is None and result["repeated_trigrams"] is None


def test_summary_scores_reject_an_empty_reference_by_index():
    with pytest.raises(ValueError, match=r"Received: references\[1\]=' \.\.\. ' with no word"):
        evaluation.summary_scores(["x y", "z w"], ["x", "z"], ["x", " ... "])


def test_summary_figures_need_neither_tensorflow_nor_keras():
    code = (
        "import sys; from keras_attn_zoo import evaluation, baselines; "
        "evaluation.summary_scores(['a b c d'], ['a b c'], ['a b'], training_targets=['a']); "
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"
