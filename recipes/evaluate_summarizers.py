"""Evaluate the Debian summarizers and the no-model baselines; write the README's table and figures.

    python recipes/evaluate_summarizers.py --runs runs              # trained runs runs/<name>/checkpoint
    python recipes/evaluate_summarizers.py                          # the bundled checkpoints (presets)
    python recipes/evaluate_summarizers.py --runs runs --split dev --tune alpha=0,0.5,1,1.5 min_length=0,3
    python recipes/evaluate_summarizers.py --runs runs --publish    # + bundle, record metrics, cards

On the test split: each model with greedy search and with its default search (`search_defaults`,
from the recipe's [evaluation]), scored by `keras_attn_zoo.task_metrics` (ROUGE-1/2/L with
stemming, novel n-grams, repeated trigrams, mean length, rare-word recall against the train
synopses), and in the same table lead-k (k = the median dev synopsis length in words) and the
first clause of the description (`keras_attn_zoo.baselines`). Writes
model_cards/results/debian_summaries.json, model_cards/figures/summarization_scores.png and
model_cards/figures/attention_debian_summarizer_pointer.png (copied tokens marked), and prints the
table as Markdown. `--tune KEY=V1,V2 ...` prints dev ROUGE for every combination and writes nothing.
"""

import argparse
import itertools
import json
import time
from pathlib import Path

import publish  # recipes/publish.py
from keras_attn_zoo.native_logs import quiet_import

quiet_import("tensorflow")  # its load-time log lines silenced; oneDNN stays on

ROOT = Path(__file__).resolve().parents[1]
RUNS = ("debian_summarizer_bahdanau", "debian_summarizer_copy", "debian_summarizer_pointer")
BUNDLED = ("debian_summarizer_bahdanau", "debian_summarizer_pointer")  # the copy-only ablation is not shipped
LABELS = {
    "debian_summarizer_bahdanau": "plain attention",
    "debian_summarizer_copy": "copy",
    "debian_summarizer_pointer": "copy + coverage",
}
DATA = ROOT.parent / "shared" / "data" / "debian_descriptions.tsv.gz"
EXAMPLE_PACKAGE = "acpitail"  # a short test description for the attention figure
FIGURES = (  # bar chart: (score key, label)
    ("rouge1", "ROUGE-1"), ("rouge2", "ROUGE-2"), ("rougeL", "ROUGE-L"),
    ("rare_word_recall", "rare-word recall"), ("novel_2grams", "novel bigrams %"), ("repeated_trigrams", "repeated trigrams %"),
)
TABLE = (
    ("rouge1", "R-1"), ("rouge2", "R-2"), ("rougeL", "R-L"), ("novel_1grams", "novel 1-g %"),
    ("novel_2grams", "novel 2-g %"), ("repeated_trigrams", "rep. 3-g %"), ("mean_length", "words"),
    ("rare_word_recall", "rare-word recall %"),
)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", help="folder of training runs (default: the bundled checkpoints)")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, help="evaluate only the first N examples")
    parser.add_argument("--names", nargs="*", help="models (default: the three runs, or the two bundled presets)")
    parser.add_argument("--tune", nargs="*", help="KEY=V1,V2,... search options: print dev scores of each combination")
    parser.add_argument("--search", nargs="*", default=[], help="KEY=VALUE search options to use (and bundle)")
    parser.add_argument("--record", action="store_true", help="record the metrics in the presets, regenerate cards")
    parser.add_argument("--publish", action="store_true", help="bundle the run checkpoints, then --record")
    args = parser.parse_args()

    from keras_attn_zoo import baselines, from_pretrained
    from keras_attn_zoo.checkpoint import load_checkpoint
    from keras_attn_zoo.data import read_pairs
    from keras_attn_zoo.task_metrics import metrics_for

    metrics = metrics_for("summarization")
    inputs, references = read_pairs(args.data, "description", "synopsis", split=args.split, prefix="package")
    descriptions, _ = read_pairs(args.data, "description", "synopsis", split=args.split)
    packages, _ = read_pairs(args.data, "package", "synopsis", split=args.split)
    _, train_synopses = read_pairs(args.data, "description", "synopsis", split="train")
    _, dev_synopses = read_pairs(args.data, "description", "synopsis", split="dev")
    if args.limit:
        inputs, references, descriptions, packages = (x[: args.limit] for x in (inputs, references, descriptions, packages))
    names = args.names or (RUNS if args.runs else BUNDLED)
    chosen = dict(_option(item) for item in args.search)

    results = {}
    k = baselines.lead_length(dev_synopses)
    for label, outputs in ((f"lead-{k}", [baselines.lead_k(d, k) for d in descriptions]),
                           ("first clause", [baselines.first_clause(d) for d in descriptions])):
        results[label] = {"baseline": metrics.score(descriptions, outputs, references, train_synopses)}
        print(f"{label}: ROUGE-L {results[label]['baseline']['rougeL']}", flush=True)

    figures = ROOT / "model_cards" / "figures"
    for name in names:
        folder = Path(args.runs) / name / "checkpoint" if args.runs else None
        model = load_checkpoint(folder) if folder else from_pretrained(name)
        if args.tune:
            tune(model, name, inputs, references, args.tune, metrics)
            continue
        search = model.search_options(**chosen)
        beam_label = f"beam{search['beam_size']}"
        entry = {"parameters": int(model.count_params()), "search": search}
        for label, beam in (("greedy", 1), (beam_label, search["beam_size"])):
            started = time.perf_counter()
            predictions = model.predict_texts(inputs, **{**search, "beam_size": beam})
            seconds = time.perf_counter() - started
            scores = metrics.score(inputs, [p.text for p in predictions], references, train_synopses)
            scores["decode_seconds"] = round(seconds, 1)
            entry[label] = scores
            print(f"{name} {label}: " + " ".join(f"{key} {scores.get(key)}" for key, _ in TABLE) + f" ({seconds:.0f} s)", flush=True)
        entry["examples"] = [
            {"package": packages[i], "reference": references[i], "output": predictions[i].text} for i in range(min(5, len(inputs)))
        ]
        if EXAMPLE_PACKAGE in packages and args.split == "test" and not args.limit:
            attention_figure(model, name, inputs[packages.index(EXAMPLE_PACKAGE)], search, figures)
        results[LABELS.get(name, name)] = entry
        if args.publish and name in BUNDLED:
            publish.bundle(name, folder, search_defaults=chosen and {**(model.search_defaults or {}), **chosen})
        if (args.publish or args.record) and name in BUNDLED:
            publish.record(name, preset_metrics(entry, beam_label))

    if args.tune or args.split != "test" or args.limit:
        return  # the results file and figures describe the whole test split only
    out = ROOT / "model_cards" / "results" / "debian_summaries.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    merged = json.loads(out.read_text()) if out.exists() else {}
    merged.update(results)
    out.write_text(json.dumps(merged, indent=2, ensure_ascii=False) + "\n")
    rows = {label: best(entry) for label, entry in merged.items()}
    from keras_attn_zoo.plots import plot_scores

    plot_scores({label: {title: row.get(key) for key, title in FIGURES} for label, row in rows.items()},
                figures / "summarization_scores.png", title=f"Debian synopses, test split ({len(references)} packages)")
    print(f"wrote {out}\n")
    print("| system | " + " | ".join(title for _, title in TABLE) + " |")
    print("|---|" + "---:|" * len(TABLE))
    for label, row in rows.items():
        print(f"| {label} | " + " | ".join("-" if row.get(key) is None else f"{row[key]:.2f}" for key, _ in TABLE) + " |")


def _option(item):
    key, _, value = item.partition("=")
    return key, json.loads(value)


def best(entry):
    """The scores shown in the table: a baseline's, or a model's with its default (beam) search."""
    if "baseline" in entry:
        return entry["baseline"]
    return entry[f"beam{entry['search']['beam_size']}"]


def tune(model, name, inputs, references, grid, metrics):
    """Dev ROUGE and mean length of every combination of the --tune values."""
    keys = [item.partition("=")[0] for item in grid]
    values = [[json.loads(v) for v in item.partition("=")[2].split(",")] for item in grid]
    for combination in itertools.product(*values):
        options = dict(zip(keys, combination))
        predictions = model.predict_texts(inputs, **options)
        scores = metrics.score(inputs, [p.text for p in predictions], references)
        print(f"{name} {options}: ROUGE-1/2/L {scores['rouge1']} / {scores['rouge2']} / {scores['rougeL']}, "
              f"repeated trigrams {scores['repeated_trigrams']}, length {scores['mean_length']}", flush=True)


def attention_figure(model, name, text, search, folder):
    """The attention heatmap of one example, with the tokens the copy switch copied (p_gen < 0.5) marked."""
    from keras_attn_zoo.plots import plot_attention

    (prediction,) = model.predict_texts([text], return_attention=True, return_details=True, **search)
    plot_attention(prediction.attention, prediction.source_tokens, prediction.tokens, folder / f"attention_{name}.png",
                   title=f"{name}: {EXAMPLE_PACKAGE} (beam {search['beam_size']})",
                   marked=prediction.copied, marked_label="copied, p_gen < 0.5")


def preset_metrics(entry, beam_label):
    """The [metrics] table of a summarizer preset from one evaluation entry."""
    metrics = {"split": "test", "test_examples": entry[beam_label]["n"]}
    for label in ("greedy", beam_label):
        for key in ("rouge1", "rouge2", "rougeL"):
            metrics[f"{key}_{label}"] = entry[label][key]
    for key in ("novel_1grams", "novel_2grams", "repeated_trigrams", "mean_length", "rare_word_recall"):
        metrics[f"{key}_{beam_label}"] = entry[beam_label][key]
    return metrics


if __name__ == "__main__":
    main()
