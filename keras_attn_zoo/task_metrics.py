"""The metrics of each task: one registry that `attn-zoo evaluate`, the recipes and model cards read.

A task adds its metrics here (a thin call into `keras_attn_zoo.evaluation`, which calls the
metric libraries) and nothing in the CLI changes:

    metrics = metrics_for(task)
    scores = metrics.score(sources, hypotheses, references, training_targets, extras)
    print("\\n".join(metrics.lines(scores)))

`references` holds, per item, one reference string or a list of them (captioning has several per
image; translation and summarization take one, and a list of one is unwrapped). `extras` is None
or a dict of what else the task's reader found (`task_data.Examples.extras`, each a list with one
entry per item) plus "predictions", the model's `Prediction`s (with attention when the task's
`uses_attention`): captioning measures attention localisation from the scenes' "items".

Plain Python, no Keras or TensorFlow import.
"""

import dataclasses

from keras_attn_zoo.errors import UnknownNameError


@dataclasses.dataclass(frozen=True)
class TaskMetrics:
    """How one task's outputs are scored and shown.

    Attributes:
        task: the task name ("translation", "summarization", ...).
        packages: the modules the scores import (`requirements.require` checks them before
            any model work and names the pip line).
        headline: `(key, label)` of the task's main scores, the first one foremost (`attn-zoo list`).
        uses_training_targets: the scores read the training split's references (rare words).
        uses_attention: the scores read the predictions' attention (ask for it when predicting).
        score: `(sources, hypotheses, references, training_targets=None, extras=None) -> dict`.
        lines: `scores -> list of str`, the table `attn-zoo evaluate` prints.
    """

    task: str
    packages: tuple
    headline: tuple
    uses_training_targets: bool
    score: object
    lines: object
    uses_attention: bool = False


def _one_reference_each(references, task):
    """One reference string per item: a list of one is unwrapped, a longer list refused."""
    result = []
    for index, entry in enumerate(references):
        if isinstance(entry, (list, tuple)):
            if len(entry) != 1:
                raise ValueError(
                    f"Received: references[{index}] with {len(entry)} references; {task} is scored against "
                    "one reference per item."
                )
            entry = entry[0]
        result.append(entry)
    return result


def _translation_score(sources, hypotheses, references, training_targets=None, extras=None):
    from keras_attn_zoo.evaluation import evaluate_predictions

    return evaluate_predictions(sources, hypotheses, _one_reference_each(references, "translation"))


def _translation_lines(scores):
    lines = [
        f"BLEU    {scores['bleu']:6.2f}  {scores['bleu_signature']}",
        f"chrF    {scores['chrf']:6.2f}  {scores['chrf_signature']}",
        "",
        "BLEU by source length (words)",
        f"{'bucket':<8}{'n':>6}{'BLEU':>8}{'chrF':>8}",
    ]
    for bucket in scores["by_length"]:
        bleu = "-" if bucket["bleu"] is None else f"{bucket['bleu']:.2f}"
        chrf = "-" if bucket["chrf"] is None else f"{bucket['chrf']:.2f}"
        lines.append(f"{bucket['bucket']:<8}{bucket['n']:>6}{bleu:>8}{chrf:>8}")
    return lines


def _summarization_score(sources, hypotheses, references, training_targets=None, extras=None):
    from keras_attn_zoo.evaluation import summary_scores

    references = _one_reference_each(references, "summarization")
    if training_targets is not None:
        training_targets = _one_reference_each(training_targets, "summarization")
    return summary_scores(sources, hypotheses, references, training_targets)


SUMMARY_FIGURES = (
    ("rouge1", "ROUGE-1 F1"),
    ("rouge2", "ROUGE-2 F1"),
    ("rougeL", "ROUGE-L F1"),
    ("novel_1grams", "novel unigrams %"),
    ("novel_2grams", "novel bigrams %"),
    ("novel_3grams", "novel trigrams %"),
    ("repeated_trigrams", "repeated trigrams %"),
    ("mean_length", "mean length (words)"),
    ("rare_word_recall", "rare-word recall %"),
)


def _summarization_lines(scores):
    lines = []
    for key, label in SUMMARY_FIGURES:
        value = scores.get(key)
        lines.append(f"{label:<22}{'-' if value is None else f'{value:.2f}':>8}")
    if scores.get("rare_words") is not None:
        lines.append(f"(rare words: {scores['rare_words']} reference words in the source, < 5 times in training summaries)")
    return lines


def _captioning_score(sources, hypotheses, references, training_targets=None, extras=None):
    """COCO caption scores; with extras "items" and "predictions" (with attention), localisation too."""
    from keras_attn_zoo.caption_evaluation import attention_localisation, caption_scores

    scores = caption_scores(hypotheses, references)
    extras = extras or {}
    items, predictions = extras.get("items"), extras.get("predictions")
    if items is not None and predictions is not None and any(entry for entry in items):
        found = attention_localisation(predictions, items)
        scores["localisation"] = found.pop("localisation")
        scores["localisation_counts"] = found
    return scores


CAPTION_FIGURES = (
    ("bleu1", "BLEU-1"),
    ("bleu2", "BLEU-2"),
    ("bleu3", "BLEU-3"),
    ("bleu4", "BLEU-4"),
    ("meteor", "METEOR"),
    ("rougeL", "ROUGE-L"),
    ("cider", "CIDEr"),
    ("exact_match", "exact match %"),
)


def _captioning_lines(scores):
    lines = []
    for key, label in CAPTION_FIGURES:
        value = scores.get(key)
        note = "  (no Java: left out)" if key == "meteor" and value is None else ""
        lines.append(f"{label:<16}{'-' if value is None else f'{value:.2f}':>8}{note}")
    if "localisation" in scores:
        counts = scores.get("localisation_counts") or {}
        value = scores["localisation"]
        lines.append(
            f"{'localisation %':<16}{'-' if value is None else f'{value:.2f}':>8}  ({counts.get('hits', 0)} of "
            f"{counts.get('item_words', 0)} item words with the attention peak in the item's cell)"
        )
    lines.append(f"(pycocoevalcap, {scores.get('tokenizer', 'ptb')} tokenizer, {scores.get('references', 1):g} references per image)")
    return lines


_CAPTIONING = TaskMetrics(
    "captioning", ("pycocoevalcap",),
    (("cider", "CIDEr"), ("bleu4", "BLEU-4"), ("meteor", "METEOR"), ("rougeL", "ROUGE-L")),
    False, _captioning_score, _captioning_lines, uses_attention=True,
)

METRICS = {
    "translation": TaskMetrics(
        "translation", ("sacrebleu",), (("bleu", "BLEU"), ("chrf", "chrF")), False,
        _translation_score, _translation_lines,
    ),
    "summarization": TaskMetrics(
        "summarization", ("rouge_score",), (("rougeL", "ROUGE-L"), ("rouge1", "ROUGE-1"), ("rouge2", "ROUGE-2")),
        True, _summarization_score, _summarization_lines,
    ),
    "captioning": _CAPTIONING,
    "image-to-text": _CAPTIONING,  # the presets' (and the Hub's) name for the task
}


def metrics_for(task):
    """The `TaskMetrics` of a task (None is the translation of checkpoints that predate tasks)."""
    from keras_attn_zoo.recipes.registry import closest

    task = task or "translation"
    if task not in METRICS:
        raise UnknownNameError(f"No metrics for task {task!r}." + closest(task, METRICS))
    return METRICS[task]
