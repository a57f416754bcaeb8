"""Measure the no-model summaries (lead-k, first clause) on the Debian descriptions.

    python recipes/summarization_baselines.py --split test
    python recipes/summarization_baselines.py --split dev --data path/to/debian_descriptions.tsv.gz

Input is the `description` column (without the package name), the reference is the `synopsis`.
k for lead-k is the median length of the dev synopses in whitespace words (the lower median, an
integer), computed here and printed. Figures come from `keras_attn_zoo.evaluation.summary_scores`:
ROUGE-1/2/L F1 (stemmed), novel 1/2/3-grams against the description, repeated trigrams, mean
length in rouge-score words, and rare-word recall with the train split's synopses as the
training targets (a word is rare below --threshold occurrences there).
"""

import argparse
import statistics
from pathlib import Path

from keras_attn_zoo import baselines
from keras_attn_zoo.data import read_pairs
from keras_attn_zoo.evaluation import summary_scores

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "debian_descriptions.tsv.gz"
COLUMNS = (
    ("rouge1", "R-1"), ("rouge2", "R-2"), ("rougeL", "R-L"),
    ("novel_1grams", "new-1"), ("novel_2grams", "new-2"), ("novel_3grams", "new-3"),
    ("repeated_trigrams", "rep-3"), ("mean_length", "words"), ("rare_word_recall", "rare"),
)


def table(rows):
    """A plain-text table: one line per (name, scores) row, the columns of `COLUMNS`."""
    width = max(len(name) for name, _ in rows)
    lines = [" ".join([f"{'':{width}}"] + [f"{title:>6}" for _, title in COLUMNS])]
    for name, scores in rows:
        cells = ["-" if scores.get(key) is None else f"{scores[key]:.2f}" for key, _ in COLUMNS]
        lines.append(" ".join([f"{name:{width}}"] + [f"{cell:>6}" for cell in cells]))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help=f"the descriptions TSV (default: {DATA})")
    parser.add_argument("--split", default="test", help="split to measure on (default: test)")
    parser.add_argument("--threshold", type=int, default=5, help="rare: fewer occurrences in train synopses")
    args = parser.parse_args(argv)

    descriptions, synopses = read_pairs(args.data, "description", "synopsis", split=args.split)
    _, dev_synopses = read_pairs(args.data, "description", "synopsis", split="dev")
    _, train_synopses = read_pairs(args.data, "description", "synopsis", split="train")
    k = baselines.lead_length(dev_synopses)
    systems = {
        f"lead-{k}": [baselines.lead_k(d, k) for d in descriptions],
        "first clause": [baselines.first_clause(d) for d in descriptions],
    }
    rows = [
        (name, summary_scores(descriptions, outputs, synopses, train_synopses, args.threshold))
        for name, outputs in systems.items()
    ]
    reference_words = statistics.mean(len(s.split()) for s in synopses)
    rare_words = rows[0][1]["rare_words"]
    print(
        f"{args.data.name} split={args.split}: {len(synopses)} pairs; k = {k} (lower median dev synopsis "
        f"length in whitespace words); reference mean {reference_words:.2f} whitespace words; "
        f"rare words (< {args.threshold} in train synopses, in source and reference): {rare_words}"
    )
    print(table(rows))


if __name__ == "__main__":
    main()
