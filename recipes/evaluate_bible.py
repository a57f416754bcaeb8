"""Evaluate the Bible en->es checkpoints on the test split and write the README's figures.

    python recipes/evaluate_bible.py --runs runs            # trained run folders runs/<name>/checkpoint
    python recipes/evaluate_bible.py                        # the checkpoints bundled in the package

For each model: sacreBLEU / chrF with greedy search and with the model's default search
(`search_defaults`: beam 5 and a GNMT length penalty; a run is measured and bundled with its
recipe file's [evaluation] as it is now, settings chosen on dev after training), BLEU per
source-length bucket, and the attention heatmap of one long test verse. Writes
model_cards/results/bible_en_es.json, model_cards/figures/bleu_by_length.png and
model_cards/figures/attention_<name>.png. With --record it also records the metrics in the
presets and regenerates model_cards/; with --publish it also copies each run's checkpoint into
the package (with its model card).

    python recipes/evaluate_bible.py --split dev --alphas 0.8,0.9,1.0,1.1,1.2   # tune alpha on dev
"""

import argparse
import json
import os
import time
from pathlib import Path

import publish  # recipes/publish.py
from keras_attn_zoo.native_logs import quiet_import  # noqa: E402

quiet_import("tensorflow")  # its load-time log lines silenced; oneDNN stays on

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("bible_en_es_bahdanau", "bible_en_es_luong", "bible_en_es_seq2seq")
DATA = ROOT.parent / "shared" / "data" / "bible_en_es.tsv.gz"
EXAMPLE_REF = "Ruth 1:16"  # a long test verse for the attention heatmaps


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", help="folder of training runs (default: the bundled checkpoints)")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--beam", type=int, help="beam size (default: the model's search_defaults)")
    parser.add_argument("--alpha", type=float, help="length penalty (default: the model's search_defaults)")
    parser.add_argument("--limit", type=int, help="evaluate only the first N test verses")
    parser.add_argument("--split", default="test")
    parser.add_argument("--alphas", help="comma-separated length penalties: print BLEU and length ratio of each, write nothing")
    parser.add_argument("--record", action="store_true", help="record the metrics in the presets and regenerate the cards")
    parser.add_argument("--publish", action="store_true", help="bundle the run checkpoints and update presets/cards")
    parser.add_argument("--names", nargs="*", default=list(NAMES))
    args = parser.parse_args()

    from keras_attn_zoo import from_pretrained
    from keras_attn_zoo.checkpoint import load_checkpoint
    from keras_attn_zoo.data import read_pairs
    from keras_attn_zoo.evaluation import evaluate_predictions
    from keras_attn_zoo.plots import plot_attention, plot_bleu_by_length
    from keras_attn_zoo.recipe_file import load_recipe_file

    sources, references = read_pairs(args.data, "en", "es", split=args.split)
    refs = read_pairs_refs(args.data, args.split)
    if args.limit:
        sources, references, refs = sources[: args.limit], references[: args.limit], refs[: args.limit]
    figures = ROOT / "model_cards" / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.names:
        folder = Path(args.runs) / name / "checkpoint" if args.runs else None
        model = load_checkpoint(folder) if folder else from_pretrained(name)
        recipe_search = publish.use_recipe_search(model, load_recipe_file(ROOT / "recipes" / f"{name}.toml"), folder)
        if args.alphas:
            tune_alpha(model, name, sources, references, args)
            continue
        search = model.search_options(args.beam, alpha=args.alpha)
        entry = {"parameters": int(model.count_params()), "search": search}
        for label, beam in (("greedy", 1), (f"beam{search['beam_size']}", search["beam_size"])):
            started = time.perf_counter()
            predictions = model.predict_texts(sources, **{**search, "beam_size": beam})
            seconds = time.perf_counter() - started
            hypotheses = [p.text for p in predictions]
            scores = evaluate_predictions(sources, hypotheses, references)
            scores["decode_seconds"] = round(seconds, 1)
            entry[label] = scores
            print(f"{name} {label}: BLEU {scores['bleu']} chrF {scores['chrf']} "
                  f"by length {[(b['bucket'], b['bleu']) for b in scores['by_length']]} ({seconds:.0f} s)", flush=True)
        entry["examples"] = [
            {"ref": refs[i], "source": sources[i], "reference": references[i], "output": predictions[i].text}
            for i in range(min(3, len(sources)))
        ]
        if EXAMPLE_REF in refs and model.attention is not None:
            i = refs.index(EXAMPLE_REF)
            (example,) = model.predict_texts([sources[i]], return_attention=True, **search)
            plot_attention(example.attention, example.source_tokens, example.tokens,
                           figures / f"attention_{name}.png", title=f"{name}: {EXAMPLE_REF} (beam {search['beam_size']})")
        results[name] = entry
        beam_label = f"beam{search['beam_size']}"
        if args.publish:
            publish.bundle(name, folder, search_defaults=recipe_search)
        if args.publish or args.record:
            publish.record(name, bible_metrics(entry, beam_label))

    if args.alphas or args.split != "test" or args.limit:
        return  # figures and results describe the whole test split only
    out = ROOT / "model_cards" / "results" / "bible_en_es.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    merged = json.loads(out.read_text()) if out.exists() else {}
    merged.update(results)  # models evaluated in earlier runs of this script stay on the figure
    out.write_text(json.dumps(merged, indent=2, ensure_ascii=False) + "\n")
    plot_bleu_by_length({n: r[beam_label]["by_length"] for n, r in sorted(merged.items())},
                        figures / "bleu_by_length.png", title=f"Test BLEU by source length (en->es, {beam_label})")
    print(f"wrote {out}")


def read_pairs_refs(path, split):
    """The `ref` column of a split, in file order (read_pairs returns only the texts)."""
    from keras_attn_zoo.data import read_pairs

    refs, _ = read_pairs(path, "ref", "en", split=split)
    return refs


def tune_alpha(model, name, sources, references, args):
    """BLEU and output/reference length ratio of beam search for each length penalty of --alphas."""
    from keras_attn_zoo.evaluation import evaluate_predictions

    reference_words = sum(len(reference.split()) for reference in references)
    for alpha in (float(value) for value in args.alphas.split(",")):
        predictions = model.predict_texts(sources, beam_size=args.beam, alpha=alpha)
        bleu = evaluate_predictions(sources, [p.text for p in predictions], references)["bleu"]
        ratio = sum(len(p.text.split()) for p in predictions) / reference_words
        print(f"{name} {args.split} alpha {alpha:g}: BLEU {bleu} length ratio {ratio:.2f}", flush=True)


def bible_metrics(entry, beam_label):
    """The [metrics] table of a Bible preset from one evaluation entry."""
    return {
        "split": "test",
        "sentences": entry[beam_label]["n"],
        "bleu_greedy": entry["greedy"]["bleu"],
        "chrf_greedy": entry["greedy"]["chrf"],
        f"bleu_{beam_label}": entry[beam_label]["bleu"],
        f"chrf_{beam_label}": entry[beam_label]["chrf"],
        f"bleu_36plus_words_{beam_label}": entry[beam_label]["by_length"][-1]["bleu"],
        "bleu_signature": entry[beam_label]["bleu_signature"],
    }


if __name__ == "__main__":
    main()
