"""The metrics of each task: one registry that `attn-zoo evaluate`, the recipes and model cards read.

A task adds its metrics here (a thin call into `keras_attn_zoo.evaluation`, which calls the
metric libraries) and nothing in the CLI changes:

    metrics = metrics_for(task)
    scores = metrics.score(sources, hypotheses, references, training_targets)
    print("\\n".join(metrics.lines(scores)))

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
        score: `(sources, hypotheses, references, training_targets) -> dict` of scores.
        lines: `scores -> list of str`, the table `attn-zoo evaluate` prints.
    """

    task: str
    packages: tuple
    headline: tuple
    uses_training_targets: bool
    score: object
    lines: object


def _translation_score(sources, hypotheses, references, training_targets=None):
    from keras_attn_zoo.evaluation import evaluate_predictions

    return evaluate_predictions(sources, hypotheses, references)


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


def _summarization_score(sources, hypotheses, references, training_targets=None):
    from keras_attn_zoo.evaluation import summary_scores

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


METRICS = {
    "translation": TaskMetrics(
        "translation", ("sacrebleu",), (("bleu", "BLEU"), ("chrf", "chrF")), False,
        _translation_score, _translation_lines,
    ),
    "summarization": TaskMetrics(
        "summarization", ("rouge_score",), (("rougeL", "ROUGE-L"), ("rouge1", "ROUGE-1"), ("rouge2", "ROUGE-2")),
        True, _summarization_score, _summarization_lines,
    ),
}


def metrics_for(task):
    """The `TaskMetrics` of a task (None is the translation of checkpoints that predate tasks)."""
    from keras_attn_zoo.recipes.registry import closest

    task = task or "translation"
    if task not in METRICS:
        raise UnknownNameError(f"No metrics for task {task!r}." + closest(task, METRICS))
    return METRICS[task]
