"""Evaluate the captioners and the no-decoder baselines; write the results, figures and (with --publish) cards.

    python recipes/evaluate_captioners.py --runs runs               # trained runs runs/<name>/checkpoint
    python recipes/evaluate_captioners.py                           # the bundled checkpoints (presets)
    python recipes/evaluate_captioners.py --runs runs --publish     # + bundle as presets, record metrics, cards

On each model's test split (its recipe's [data]): greedy search and the model's default search
(`search_defaults`, from the recipe's [evaluation]), scored by `keras_attn_zoo.task_metrics`
(captioning: pycocoevalcap BLEU-1..4, METEOR, ROUGE-L, CIDEr against all references of an image,
exact match) and, where the records list each scene's items (Fashion-MNIST scenes), attention
localisation. For the icons, the same table holds the most frequent training caption and the
nearest training image's caption (recipes/captioning_baselines.py). Writes
model_cards/results/captioning.json and model_cards/figures/attention_<name>.png (Show, Attend and
Tell: the attention over the image at each word), and prints the table as Markdown.

--publish bundles each run's checkpoint as its preset (recipes/publish.py; a captioner's
model.weights.h5 holds only its decoder when the encoder was frozen, which is rebuilt at load; a
fine-tuned encoder is in the weights file) after checking
that every bundled file stays under 16 MB, records the metrics and regenerates the model cards.
"""

import argparse
import json
import time
from pathlib import Path

import captioning_baselines  # recipes/captioning_baselines.py
import publish  # recipes/publish.py
from keras_attn_zoo.native_logs import quiet_import

quiet_import("tensorflow")  # its load-time log lines silenced; oneDNN stays on

ROOT = Path(__file__).resolve().parents[1]
RUNS = ("icon_captioner", "fashion_scenes_captioner")
BASELINE_RECIPE = {"icon_captioner": ROOT / "recipes" / "icon_captioner.toml"}
# The test image drawn in each model's figure, by its index in the test split: an icon the model
# captions right ("woman artist medium-dark skin tone"), and a scene of three items (a dress, a pullover
# and a sneaker, which the bundled scenes model names and places right). The table scores every test image.
EXAMPLE = {"icon_captioner": 108, "fashion_scenes_captioner": 2}
MAX_FILE_BYTES = 16 * 1024 * 1024
TABLE = (("bleu1", "B-1"), ("bleu4", "B-4"), ("meteor", "METEOR"), ("rougeL", "R-L"), ("cider", "CIDEr"),
         ("exact_match", "exact %"), ("localisation", "localisation %"))
CARD_KEYS = ("bleu1", "bleu4", "meteor", "rougeL", "cider")  # the model-index scores; the rest are listed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", help="folder of training runs (default: the bundled checkpoints)")
    parser.add_argument("--names", nargs="*", default=list(RUNS), help="models (default: both captioners)")
    parser.add_argument("--recipes", default=str(ROOT / "recipes"), help="folder of the recipe files (their data)")
    parser.add_argument("--limit", type=int, help="evaluate only the first N test images (writes nothing)")
    parser.add_argument("--no-greedy", action="store_true", help="only the default search")
    parser.add_argument("--publish", action="store_true", help="bundle the run checkpoints, record metrics, cards")
    args = parser.parse_args()

    from keras_attn_zoo import from_pretrained
    from keras_attn_zoo.checkpoint import load_checkpoint
    from keras_attn_zoo.recipe_file import load_recipe_file
    from keras_attn_zoo.task_data import read_examples
    from keras_attn_zoo.task_metrics import metrics_for

    metrics = metrics_for("captioning")
    figures = ROOT / "model_cards" / "figures"
    results = {}
    for name in args.names:
        recipe_path = Path(args.recipes) / f"{name}.toml"
        spec = load_recipe_file(recipe_path)
        data = spec["data"]
        examples = read_examples("captioning", data["path"], data["source"], data["target"],
                                 split=data.get("test_split", "test")).head(args.limit)
        if name in BASELINE_RECIPE:
            cache = Path(args.runs) / name / "features" if args.runs else None
            outputs, _ = captioning_baselines.baseline_captions(recipe_path, data.get("test_split", "test"), cache, args.limit)
            for label, captions in outputs.items():
                scores = metrics.score(examples.sources, captions, examples.references)
                results[f"{name}: {label}"] = {"baseline": _lean(scores)}
                print(f"{name} {label}: " + _row(scores), flush=True)

        folder = Path(args.runs) / name / "checkpoint" if args.runs else None
        model = load_checkpoint(folder) if folder else from_pretrained(name)
        recipe_search = publish.use_recipe_search(model, spec, folder)
        if args.publish and folder is not None:
            # Bundle first, then measure what ships: float16 weights when float32 would pass the
            # size a file may have (Keras casts them back at load; the scores below are theirs).
            float32_bytes = 4 * int(model.count_params())
            dtype = "float16" if float32_bytes >= MAX_FILE_BYTES else "float32"
            target = publish.bundle(name, folder, search_defaults=recipe_search, weights_dtype=dtype)
            check_file_sizes(target)
            model = load_checkpoint(target)
        search = model.search_options()
        beam_label = f"beam{search['beam_size']}"
        entry = {"parameters": int(model.count_params()), "search": search, "test_images": len(examples)}
        greedy = not args.no_greedy and search["beam_size"] > 1
        decodings = [(beam_label, search["beam_size"])] + ([("greedy", 1)] if greedy else [])
        for label, beam in decodings:
            started = time.perf_counter()
            predictions = model.predict_inputs(examples.inputs, return_attention=bool(examples.extras), **{**search, "beam_size": beam})
            seconds = time.perf_counter() - started
            extras = {**examples.extras, "predictions": predictions}
            scores = metrics.score(examples.sources, [p.text for p in predictions], examples.references, None, extras)
            scores["decode_seconds"] = round(seconds, 1)
            entry[label] = _lean(scores)
            print(f"{name} {label}: " + _row(scores) + f" ({seconds:.0f} s)", flush=True)
            if label == beam_label:
                entry["examples"] = [
                    {"image": Path(examples.inputs[i]).name, "references": examples.references[i], "output": predictions[i].text}
                    for i in range(min(5, len(examples)))
                ]
        if not args.limit:
            attention_figure(model, name, examples.inputs[EXAMPLE.get(name, 0)], search, figures)
        results[name] = entry
        if args.publish and folder is not None:
            publish.record(name, preset_metrics(entry, beam_label))

    if args.limit:
        return  # the results file and figures describe whole test splits only
    out = ROOT / "model_cards" / "results" / "captioning.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    merged = json.loads(out.read_text()) if out.exists() else {}
    merged.update(results)
    out.write_text(json.dumps(merged, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}\n")
    print("| system | " + " | ".join(title for _, title in TABLE) + " |")
    print("|---|" + "---:|" * len(TABLE))
    for label, entry in merged.items():
        row = best(entry)
        print(f"| {label} | " + " | ".join("-" if row.get(key) is None else f"{row[key]:.2f}" for key, _ in TABLE) + " |")


def _lean(scores):
    """The scores without the per-image lists (the results file stays readable)."""
    raw = {key: value for key, value in scores.get("raw", {}).items() if not isinstance(value, list)}
    return {**scores, "raw": raw}


def _row(scores):
    return " ".join(f"{key} {scores.get(key)}" for key, _ in TABLE if key in scores)


def best(entry):
    """The scores shown in the table: a baseline's, or a model's with its default (beam) search."""
    if "baseline" in entry:
        return entry["baseline"]
    return entry[f"beam{entry['search']['beam_size']}"]


def preset_metrics(entry, beam_label):
    """The [metrics] table of a captioner preset from one evaluation entry."""
    metrics = {"split": "test", "test_examples": entry["test_images"]}
    for label in ("greedy", beam_label):
        if label not in entry:
            continue
        for key in CARD_KEYS:
            if entry[label].get(key) is not None:
                metrics[f"{key}_{label}"] = entry[label][key]
    for key in ("exact_match", "localisation"):
        if entry[beam_label].get(key) is not None:
            metrics[f"{key}_{beam_label}"] = entry[beam_label][key]
    return metrics


def check_file_sizes(folder, limit=MAX_FILE_BYTES):
    """Every file of a bundled checkpoint stays under `limit` bytes (a captioner's weights: the decoder alone)."""
    too_big = [(p, p.stat().st_size) for p in Path(folder).rglob("*") if p.is_file() and p.stat().st_size >= limit]
    if too_big:
        listed = ", ".join(f"{p} ({size:,} bytes)" for p, size in too_big)
        raise SystemExit(f"Bundled files over {limit:,} bytes: {listed}; expected each under it.")


def attention_figure(model, name, image, search, folder):
    """Show, Attend and Tell's figure of one test image: the attention over the image at each word."""
    (prediction,) = model.predict_inputs([image], return_attention=True, **search)
    path = folder / f"attention_{name}.png"
    model.plot_prediction(prediction, image, path)
    print(f"wrote {path}: {prediction.text!r}")
    return path


if __name__ == "__main__":
    main()
