"""Scores for translations and summaries: sacreBLEU BLEU and chrF, BLEU by source length, ROUGE.

Everything here works on plain lists of detokenized strings and needs neither Keras nor
TensorFlow, so scoring a file of predictions is cheap. The metrics themselves come from
`sacrebleu` and `rouge-score`; this module only validates inputs, buckets sentences and shapes
the results into the dict that goes into `metadata.json` and model cards:

    {"bleu": 27.35, "chrf": 55.12, "bleu_signature": "nrefs:1|case:mixed|...|tok:13a|...",
     "chrf_signature": "nrefs:1|case:mixed|...|nc:6|nw:0|...", "n": 3003,
     "raw": {"bleu": 27.3456..., "chrf": 55.1234..., "precisions": [...], "bp": ..., ...},
     "by_length": [{"bucket": "<=15", "n": 1210, "bleu": 31.2, "chrf": 58.0, "raw": {...}}, ...]}

Scores are on sacreBLEU's 0-100 scale, rounded to `DECIMALS` places; the unrounded floats stay
under "raw".
"""

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
