"""Scores for translations and summaries: sacreBLEU BLEU and chrF, BLEU by source length, ROUGE,
and the summary figures of See et al. (2017): novel n-grams, repeated trigrams, rare-word recall.

Everything here works on plain lists of detokenized strings and needs neither Keras nor
TensorFlow, so scoring a file of predictions is cheap. The metrics themselves come from
`sacrebleu` and `rouge-score`; this module only validates inputs, buckets sentences and shapes
the results into the dict that goes into `metadata.json` and model cards:

    {"bleu": 27.35, "chrf": 55.12, "bleu_signature": "nrefs:1|case:mixed|...|tok:13a|...",
     "chrf_signature": "nrefs:1|case:mixed|...|nc:6|nw:0|...", "n": 3003,
     "raw": {"bleu": 27.3456..., "chrf": 55.1234..., "precisions": [...], "bp": ..., ...},
     "by_length": [{"bucket": "<=15", "n": 1210, "bleu": 31.2, "chrf": 58.0, "raw": {...}}, ...]}

and, for summaries (`summary_scores`; words are rouge-score's tokens, see `summary_words`):

    {"rouge1": 35.1, "rouge2": 14.2, "rougeL": 33.0, "novel_1grams": 41.5, "novel_2grams": 70.2,
     "novel_3grams": 82.9, "repeated_trigrams": 1.3, "mean_length": 6.8, "rare_word_recall": 55.0,
     "rare_words": 412, "n": 1185, "raw": {...}}

Scores are on sacreBLEU's 0-100 scale, rounded to `DECIMALS` places; the unrounded floats stay
under "raw".
"""

import collections
import importlib
import numbers

DECIMALS = 2

# Source-length buckets (inclusive word counts; `None` = no upper bound).
DEFAULT_LENGTH_BUCKETS = ((0, 15), (16, 25), (26, 35), (36, None))


def _require(module, pip_name, purpose):
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"{purpose} needs the `{pip_name}` package, which is not installed. "
            f"Install it with: pip install {pip_name}"
        ) from error


def _round(value):
    return None if value is None else round(float(value), DECIMALS)


def _check_texts(name, texts):
    if isinstance(texts, str) or not hasattr(texts, "__len__"):
        raise ValueError(
            f"Received: {name} of type {type(texts).__name__}; expected a list of strings, "
            "one per sentence."
        )
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(
                f"Received: {name}[{index}] of type {type(text).__name__}; "
                "expected every entry to be a string."
            )
    return list(texts)


def _check_pair(hypotheses, references, sources=None):
    hypotheses = _check_texts("hypotheses", hypotheses)
    references = _check_texts("references", references)
    if len(hypotheses) != len(references):
        raise ValueError(
            f"Received: {len(hypotheses)} hypotheses and {len(references)} references; "
            "expected the same number of each (one reference per hypothesis)."
        )
    if sources is not None:
        sources = _check_texts("sources", sources)
        if len(sources) != len(hypotheses):
            raise ValueError(
                f"Received: {len(sources)} sources and {len(hypotheses)} hypotheses; "
                "expected the same number of each."
            )
    if not hypotheses:
        raise ValueError("Received: 0 hypotheses and 0 references; expected at least one pair.")
    return hypotheses, references, sources


def _bleu_and_chrf(hypotheses, references):
    """Corpus BLEU (13a, cased) and chrF (nc=6, nw=0) from fresh sacreBLEU metric objects."""
    sacrebleu = _require("sacrebleu", "sacrebleu", "BLEU and chrF scoring")
    bleu_metric = sacrebleu.BLEU()
    chrf_metric = sacrebleu.CHRF()
    bleu = bleu_metric.corpus_score(hypotheses, [references])
    chrf = chrf_metric.corpus_score(hypotheses, [references])
    return bleu, chrf, str(bleu_metric.get_signature()), str(chrf_metric.get_signature())


def corpus_scores(hypotheses, references):
    """Corpus BLEU and chrF of detokenized hypotheses against one reference each.

    BLEU is sacreBLEU's default: 13a tokenization, cased, exponential smoothing; chrF is
    sacreBLEU's default chrF (character 6-grams, no word n-grams, beta 2). Pass detokenized,
    untruecased text as a reader would see it: sacreBLEU tokenizes it itself.

    Args:
        hypotheses: list of model outputs, one string per sentence.
        references: list of reference translations, same length.

    Returns:
        `{"bleu", "chrf", "bleu_signature", "chrf_signature", "n", "raw"}`: scores on a 0-100 scale
        rounded to `DECIMALS` places, the sacreBLEU signature strings, the sentence count, and
        under "raw" the unrounded scores with BLEU's n-gram precisions, brevity penalty, length
        ratio and hypothesis/reference lengths in 13a tokens.

    Raises:
        ValueError: the lists differ in length, are empty, or hold something other than strings.
    """
    hypotheses, references, _ = _check_pair(hypotheses, references)
    bleu, chrf, bleu_signature, chrf_signature = _bleu_and_chrf(hypotheses, references)
    return {
        "bleu": _round(bleu.score),
        "chrf": _round(chrf.score),
        "bleu_signature": bleu_signature,
        "chrf_signature": chrf_signature,
        "n": len(hypotheses),
        "raw": {
            "bleu": float(bleu.score),
            "chrf": float(chrf.score),
            "precisions": [float(p) for p in bleu.precisions],
            "bp": float(bleu.bp),
            "ratio": float(bleu.ratio),
            "hyp_len": int(bleu.sys_len),
            "ref_len": int(bleu.ref_len),
        },
    }


def bucket_label(bucket):
    """`(0, 15)` -> "<=15", `(16, 25)` -> "16-25", `(36, None)` -> "36+"."""
    low, high = bucket
    if high is None:
        return f"{low}+"
    if low == 0:
        return f"<={high}"
    return f"{low}-{high}"


def _check_buckets(buckets):
    buckets = [tuple(bucket) for bucket in buckets]
    expected = (
        "expected (low, high) pairs of word counts, low <= high, sorted and non-overlapping, "
        "with high=None only in the last"
    )
    if not buckets:
        raise ValueError(f"Received: buckets=[]; {expected}.")
    previous_high = -1
    for index, bucket in enumerate(buckets):
        if len(bucket) != 2:
            raise ValueError(f"Received: buckets={buckets}; {expected}.")
        low, high = bucket
        is_last = index == len(buckets) - 1
        if (
            not isinstance(low, numbers.Integral)
            or low <= previous_high
            or (high is None and not is_last)
            or (high is not None and (not isinstance(high, numbers.Integral) or high < low))
        ):
            raise ValueError(f"Received: buckets={buckets}; {expected}.")
        previous_high = high
    return buckets


def length_buckets(sources, buckets=DEFAULT_LENGTH_BUCKETS):
    """The bucket index of each source, by its count of whitespace-separated words.

    Args:
        sources: list of source sentences.
        buckets: inclusive `(low, high)` word counts, sorted and non-overlapping; `high=None`
            (last bucket only) means no upper bound.

    Returns:
        a list of ints, one per source: its position in `buckets`.

    Raises:
        ValueError: the buckets are malformed, or a source falls in no bucket.
    """
    sources = _check_texts("sources", sources)
    buckets = _check_buckets(buckets)
    indices = []
    for position, source in enumerate(sources):
        n_words = len(source.split())
        for index, (low, high) in enumerate(buckets):
            if low <= n_words and (high is None or n_words <= high):
                indices.append(index)
                break
        else:
            raise ValueError(
                f"Received: sources[{position}] with {n_words} words, which no bucket covers; "
                f"buckets={buckets}. Expected buckets that cover every source length."
            )
    return indices


def bleu_by_length(sources, hypotheses, references, buckets=DEFAULT_LENGTH_BUCKETS):
    """Corpus BLEU and chrF within buckets of source length (whitespace-separated words).

    Args:
        sources: list of source sentences, the text the model translated.
        hypotheses: list of model outputs, same length.
        references: list of references, same length.
        buckets: inclusive `(low, high)` word counts, sorted and non-overlapping; `high=None`
            (last bucket only) means no upper bound. Every source must fall in some bucket.

    Returns:
        one dict per bucket, in order: `{"bucket": "16-25", "n": 120, "bleu": 24.1,
        "chrf": 51.3, "raw": {"bleu": ..., "chrf": ...}}`. A bucket with no sentence has
        `n=0` and `None` scores.

    Raises:
        ValueError: the three lists differ in length or are empty, the buckets are malformed,
            or a source falls in no bucket.
    """
    hypotheses, references, sources = _check_pair(hypotheses, references, sources)
    buckets = _check_buckets(buckets)
    members = [[] for _ in buckets]
    for position, index in enumerate(length_buckets(sources, buckets)):
        members[index].append(position)

    results = []
    for bucket, positions in zip(buckets, members):
        entry = {"bucket": bucket_label(bucket), "n": len(positions)}
        if positions:
            bleu, chrf, _, _ = _bleu_and_chrf(
                [hypotheses[i] for i in positions], [references[i] for i in positions]
            )
            entry.update(
                bleu=_round(bleu.score),
                chrf=_round(chrf.score),
                raw={"bleu": float(bleu.score), "chrf": float(chrf.score)},
            )
        else:
            entry.update(bleu=None, chrf=None, raw={"bleu": None, "chrf": None})
        results.append(entry)
    return results


def evaluate_predictions(sources, hypotheses, references, buckets=DEFAULT_LENGTH_BUCKETS):
    """Everything a translation model card reports: corpus scores plus BLEU by source length.

    Returns:
        `corpus_scores(hypotheses, references)` with a "by_length" entry holding
        `bleu_by_length(sources, hypotheses, references, buckets)`.
    """
    hypotheses, references, sources = _check_pair(hypotheses, references, sources)
    scores = corpus_scores(hypotheses, references)
    scores["by_length"] = bleu_by_length(sources, hypotheses, references, buckets)
    return scores


DEFAULT_ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def rouge_scores(hypotheses, references, rouge_types=DEFAULT_ROUGE_TYPES, use_stemmer=True):
    """Mean ROUGE F1 over sentence pairs, from Google's `rouge-score` package.

    `rouge-score`'s default tokenizer lowercases and keeps only ASCII letters and digits, so it
    suits English summaries. "rougeLsum" splits summaries into sentences on newlines: join the
    sentences of each summary with "\\n" before scoring.

    Args:
        hypotheses: list of generated summaries.
        references: list of reference summaries, same length.
        rouge_types: any of rouge-score's types ("rouge1" ... "rouge9", "rougeL", "rougeLsum").
        use_stemmer: apply the Porter stemmer before matching.

    Returns:
        `{"rouge1": 41.2, ..., "n": 100, "raw": {"rouge1": {"precision", "recall",
        "fmeasure"}, ...}}`: mean F1 on a 0-100 scale rounded to `DECIMALS` places, and under
        "raw" the unrounded mean precision, recall and F1 (0-100) of each type.

    Raises:
        ImportError: `rouge-score` is not installed.
        ValueError: the lists differ in length, are empty, or hold something other than strings.
    """
    hypotheses, references, _ = _check_pair(hypotheses, references)
    rouge_scorer = _require("rouge_score.rouge_scorer", "rouge-score", "ROUGE scoring")
    scorer = rouge_scorer.RougeScorer(list(rouge_types), use_stemmer=use_stemmer)
    totals = {t: {"precision": 0.0, "recall": 0.0, "fmeasure": 0.0} for t in rouge_types}
    for hypothesis, reference in zip(hypotheses, references):
        # rouge-score takes (target, prediction): the reference comes first.
        for rouge_type, score in scorer.score(reference, hypothesis).items():
            for field in ("precision", "recall", "fmeasure"):
                totals[rouge_type][field] += getattr(score, field)
    n = len(hypotheses)
    raw = {
        rouge_type: {field: 100.0 * total / n for field, total in fields.items()}
        for rouge_type, fields in totals.items()
    }
    result = {rouge_type: _round(raw[rouge_type]["fmeasure"]) for rouge_type in rouge_types}
    result.update(n=n, raw=raw)
    return result


# --------------------------------------------------------------------------------------------
# Summaries: abstractiveness, repetition, rare words.
#
# Words are rouge-score's tokens without stemming: lowercased, every run of characters other than
# ASCII letters and digits is a separator ("Real-time" -> "real", "time"). So these figures count
# the same words ROUGE matches.

SUMMARY_ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
DEFAULT_NOVEL_NGRAMS = (1, 2, 3)


def summary_words(text):
    """rouge-score's words of `text` without stemming: lowercase ASCII letters and digits."""
    tokenizers = _require("rouge_score.tokenizers", "rouge-score", "Summary word counts")
    return tokenizers.DefaultTokenizer(use_stemmer=False).tokenize(text)


def _ngrams(words, n):
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def _share(part, whole):
    return None if whole == 0 else 100.0 * part / whole


def _check_aligned(**named):
    lists = {name: _check_texts(name, texts) for name, texts in named.items()}
    (first, texts), *others = lists.items()
    for name, other in others:
        if len(other) != len(texts):
            raise ValueError(
                f"Received: {len(texts)} {first} and {len(other)} {name}; expected the same number of each."
            )
    if not texts:
        raise ValueError(f"Received: 0 {first}; expected at least one.")
    return lists.values()


def _check_orders(n):
    orders = (n,) if isinstance(n, numbers.Number) or not hasattr(n, "__iter__") else tuple(n)
    if not orders or any(
        isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1 for k in orders
    ):
        raise ValueError(f"Received: n={n!r}; expected a positive integer or a non-empty list of them.")
    return tuple(dict.fromkeys(int(k) for k in orders))


def novel_ngrams(sources, hypotheses, n=DEFAULT_NOVEL_NGRAMS):
    """Share of output n-grams that are not in the source: how abstractive the summaries are.

    For each order k in `n`, every k-gram occurrence of every hypothesis is counted (a k-gram twice
    in one output counts twice); it is novel when that k-gram does not occur anywhere in the same
    example's source. The share is pooled over the corpus, not averaged per example:

        novel_k = 100 * sum_i #{novel k-gram occurrences in hypothesis i}
                      / sum_i #{k-gram occurrences in hypothesis i}

    Words are `summary_words` (rouge-score's tokens, no stemming). A copy of the source scores 0.

    Args:
        sources: list of the texts that were summarized.
        hypotheses: list of summaries, same length (empty ones add no n-gram).
        n: an order or a list of orders (positive integers).

    Returns:
        `{"novel_1grams": 12.5, ..., "n": 2, "raw": {"novel_1grams": 12.5, ...,
        "ngrams": {"1": 16, ...}}}`: the shares (0-100) rounded to `DECIMALS` places (None
        for an order no hypothesis is long enough to have), the example count, and under "raw"
        the unrounded shares and the number of output k-grams they pool.

    Raises:
        ValueError: the lists differ in length, are empty or hold something other than strings,
            or `n` is not a positive integer or a list of them.
    """
    sources, hypotheses = _check_aligned(sources=sources, hypotheses=hypotheses)
    orders = _check_orders(n)
    novel = dict.fromkeys(orders, 0)
    total = dict.fromkeys(orders, 0)
    for source, hypothesis in zip(sources, hypotheses):
        source_words, words = summary_words(source), summary_words(hypothesis)
        for k in orders:
            seen = set(_ngrams(source_words, k))
            grams = _ngrams(words, k)
            total[k] += len(grams)
            novel[k] += sum(gram not in seen for gram in grams)
    raw = {f"novel_{k}grams": _share(novel[k], total[k]) for k in orders}
    result = {key: _round(value) for key, value in raw.items()}
    raw["ngrams"] = {str(k): total[k] for k in orders}
    result.update(n=len(hypotheses), raw=raw)
    return result


def repeated_trigrams(hypotheses):
    """Share of output trigrams that already occurred earlier in the same output.

    Within each hypothesis, trigram occurrence j is repeated when the same trigram starts at some
    position before j ("the the the the": 2 trigrams, 1 repeated). Repeats across different
    outputs do not count. Pooled over the corpus:

        repeated = 100 * sum_i #{repeated trigram occurrences in hypothesis i}
                       / sum_i #{trigram occurrences in hypothesis i}

    Words are `summary_words` (rouge-score's tokens, no stemming).

    Args:
        hypotheses: list of summaries (empty ones add no trigram).

    Returns:
        `{"repeated_trigrams": 4.76, "n": 2, "raw": {"repeated_trigrams": 4.7619...,
        "trigrams": 21}}`: the share (0-100) rounded to `DECIMALS` places (None when no output
        has 3 words), and under "raw" the unrounded share and the number of output trigrams.

    Raises:
        ValueError: `hypotheses` is empty or holds something other than strings.
    """
    (hypotheses,) = _check_aligned(hypotheses=hypotheses)
    repeated = total = 0
    for hypothesis in hypotheses:
        seen = set()
        for gram in _ngrams(summary_words(hypothesis), 3):
            repeated += gram in seen
            seen.add(gram)
            total += 1
    share = _share(repeated, total)
    return {
        "repeated_trigrams": _round(share),
        "n": len(hypotheses),
        "raw": {"repeated_trigrams": share, "trigrams": total},
    }


def rare_word_recall(sources, hypotheses, references, training_targets, threshold=5):
    """Share of rare source words of the reference that the output reproduces: can it copy?

    A word is rare when it occurs fewer than `threshold` times in all `training_targets` together
    (so never-seen words are rare). For example i, the rare reference words are the distinct
    words of reference i that are rare and also occur in source i: words a summary can only get
    by copying. Each counts once per example (presence, not frequency), and is recalled when it
    occurs anywhere in hypothesis i. Pooled over the corpus:

        rare_word_recall = 100 * sum_i #{rare reference words of i in hypothesis i}
                               / sum_i #{rare reference words of i}

    Words are `summary_words` (rouge-score's tokens, lowercased, no stemming).

    Args:
        sources: list of the texts that were summarized.
        hypotheses: list of summaries, same length.
        references: list of reference summaries, same length.
        training_targets: the training summaries (any number of strings) that define "rare".
        threshold: a word is rare below this many occurrences in `training_targets`.

    Returns:
        `{"rare_word_recall": 50.0, "rare_words": 4, "n": 2, "raw": {"rare_word_recall": 50.0,
        "rare_words": 4, "recalled": 2}}`: the recall (0-100) rounded to `DECIMALS` places
        (None when no example has a rare reference word), the number of rare reference words it
        pools, and under "raw" the unrounded recall and how many were reproduced.

    Raises:
        ValueError: the lists differ in length, are empty or hold something other than strings,
            or `threshold` is not a positive integer.
    """
    sources, hypotheses, references = _check_aligned(
        sources=sources, hypotheses=hypotheses, references=references
    )
    training_targets = _check_texts("training_targets", training_targets)
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Integral) or threshold < 1:
        raise ValueError(f"Received: threshold={threshold!r}; expected a positive integer.")
    counts = collections.Counter(word for target in training_targets for word in summary_words(target))
    rare = recalled = 0
    for source, hypothesis, reference in zip(sources, hypotheses, references):
        wanted = {
            word
            for word in set(summary_words(reference)) & set(summary_words(source))
            if counts[word] < threshold
        }
        rare += len(wanted)
        recalled += len(wanted & set(summary_words(hypothesis)))
    share = _share(recalled, rare)
    return {
        "rare_word_recall": _round(share),
        "rare_words": rare,
        "n": len(hypotheses),
        "raw": {"rare_word_recall": share, "rare_words": rare, "recalled": recalled},
    }


def summary_scores(sources, hypotheses, references, training_targets=None, threshold=5):
    """Everything a summarization model card reports, in one dict.

    ROUGE-1/2/L F1 (`rouge_scores`, Porter stemming on), the novel 1/2/3-gram shares
    (`novel_ngrams`), the repeated trigram share (`repeated_trigrams`), the mean output length in
    `summary_words`, and, when `training_targets` is given, `rare_word_recall`. An empty
    hypothesis is a valid (bad) summary: it scores 0 ROUGE and has length 0.

    Args:
        sources: list of the texts that were summarized.
        hypotheses: list of summaries, same length.
        references: list of reference summaries, same length; each must hold a word.
        training_targets: the training summaries for `rare_word_recall`; None leaves it out.
        threshold: passed to `rare_word_recall`.

    Returns:
        `{"rouge1", "rouge2", "rougeL", "novel_1grams", "novel_2grams", "novel_3grams",
        "repeated_trigrams", "mean_length", ["rare_word_recall", "rare_words"], "n", "raw"}`:
        figures rounded to `DECIMALS` places, and under "raw" the unrounded ones (ROUGE as
        `rouge_scores` gives them: precision, recall and F1 of each type).

    Raises:
        ValueError: the lists differ in length, are empty or hold something other than strings,
            or a reference has no word (the message names its index).
    """
    sources, hypotheses, references = _check_aligned(
        sources=sources, hypotheses=hypotheses, references=references
    )
    for index, reference in enumerate(references):
        if not summary_words(reference):
            raise ValueError(
                f"Received: references[{index}]={reference!r} with no word; expected every reference "
                "to hold at least one letter or digit."
            )
    rouge = rouge_scores(hypotheses, references, rouge_types=SUMMARY_ROUGE_TYPES)
    novel = novel_ngrams(sources, hypotheses)
    repeated = repeated_trigrams(hypotheses)
    mean_length = sum(len(summary_words(h)) for h in hypotheses) / len(hypotheses)

    result = {rouge_type: rouge[rouge_type] for rouge_type in SUMMARY_ROUGE_TYPES}
    raw = dict(rouge["raw"])
    for key in (f"novel_{k}grams" for k in DEFAULT_NOVEL_NGRAMS):
        result[key], raw[key] = novel[key], novel["raw"][key]
    result["repeated_trigrams"] = repeated["repeated_trigrams"]
    raw["repeated_trigrams"] = repeated["raw"]["repeated_trigrams"]
    result["mean_length"], raw["mean_length"] = _round(mean_length), mean_length
    if training_targets is not None:
        rare = rare_word_recall(sources, hypotheses, references, training_targets, threshold)
        result["rare_word_recall"] = rare["rare_word_recall"]
        raw["rare_word_recall"] = rare["raw"]["rare_word_recall"]
        result["rare_words"] = raw["rare_words"] = rare["rare_words"]
    result.update(n=len(hypotheses), raw=raw)
    return result
