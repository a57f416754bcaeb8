"""Hugging Face model cards, generated from a preset (and its checkpoint's metadata.json).

`render_card(preset, metadata)` returns the README.md of a model repository: YAML front matter
(written by huggingface_hub's `ModelCardData`, with a `model-index` of exactly the scores in the
preset's [metrics] table), then what the model is, how it was trained, how to use it, how it
scores and what it cannot do. Nothing in a card is typed by hand: the committed cards in
`model_cards/` are rewritten from the presets with

    python -m keras_attn_zoo.model_card --write     # or --check: exit 1 if a card is stale

and a test asserts each equals a fresh render, so cards and presets cannot drift. Imports neither
TensorFlow nor Keras.
"""

import argparse
import json
import re
import sys
import typing
from pathlib import Path

from keras_attn_zoo import presets as preset_registry

PIPELINE_TAGS = {
    "translation": "translation",
    "summarization": "summarization",
    "captioning": "image-to-text",
    "image-to-text": "image-to-text",
}
# Tags of a task, after the library's and the architecture's.
TASK_TAGS = {"captioning": ["image-captioning", "show-attend-tell"], "image-to-text": ["image-captioning"]}
LANGUAGE_NAMES = {"en": "English", "es": "Spanish", "fr": "French", "de": "German"}
# metric key prefix -> (model-index metric type, display name)
METRIC_TYPES = {
    "bleu": ("sacrebleu", "BLEU"),
    "chrf": ("chrf", "chrF"),
    # captioning (pycocoevalcap, several references per image), then its ROUGE-L and CIDEr
    "bleu1": ("bleu", "BLEU-1"),
    "bleu2": ("bleu", "BLEU-2"),
    "bleu3": ("bleu", "BLEU-3"),
    "bleu4": ("bleu", "BLEU-4"),
    "meteor": ("meteor", "METEOR"),
    "rouge1": ("rouge", "ROUGE-1"),
    "rouge2": ("rouge", "ROUGE-2"),
    "rougeL": ("rouge", "ROUGE-L"),
    "rougeLsum": ("rouge", "ROUGE-Lsum"),
    "cider": ("cider", "CIDEr"),
    # captioning: captions equal to a reference, and (scenes) item words looked at in their cell
    "exact_match": ("exact_match", "exact %"),
    "localisation": ("localisation", "localisation %"),
}
PAPERS = {
    "bahdanau": "Bahdanau, Cho and Bengio (2015), *Neural Machine Translation by Jointly Learning to Align and "
    "Translate*, https://arxiv.org/abs/1409.0473",
    "luong": "Luong, Pham and Manning (2015), *Effective Approaches to Attention-based Neural Machine "
    "Translation*, https://arxiv.org/abs/1508.04025",
    "copy": "See, Liu and Manning (2017), *Get To The Point: Summarization with Pointer-Generator Networks*, "
    "https://arxiv.org/abs/1704.04368",
    "none": "Sutskever, Vinyals and Le (2014), *Sequence to Sequence Learning with Neural Networks*, "
    "https://arxiv.org/abs/1409.3215; Cho et al. (2014), https://arxiv.org/abs/1406.1078",
    "show_attend_tell": "Xu, Ba, Kiros, Cho, Courville, Salakhutdinov, Zemel and Bengio (2015), *Show, Attend and "
    "Tell: Neural Image Caption Generation with Visual Attention*, https://arxiv.org/abs/1502.03044",
}
# How each task's model is called in a card's usage section: (command-line input, Python call).
# The Python call is formatted with the example input; the default is text in, text out.
USAGE = {
    "captioning": ("{example}", "model.predict_images([{example}], beam_size={beam})[0]"),
}
DEFAULT_USAGE = ("{example}", "model.predict_texts([{example}], beam_size={beam})[0]")
DEFAULT_BEAM = 5
SPLITS = ("train", "dev", "test")
CARDS_DIR = Path(__file__).resolve().parent.parent / "model_cards"  # in a source checkout
_SCORE_KEY = re.compile(
    r"^(?:(" + "|".join(SPLITS) + r")_)?("
    + "|".join(sorted(METRIC_TYPES, key=len, reverse=True))
    + r")_(greedy|beam(\d+))$"
)


# -- Scores -----------------------------------------------------------------------------------


class Score(typing.NamedTuple):
    """One measured score of a preset's [metrics] table."""

    key: str  # as in the [metrics] table
    split: str | None
    metric: str  # a METRIC_TYPES key
    decoding: str  # "greedy" or "beam<N>"
    beam: int
    value: float


def scores(metrics):
    """The scores of a [metrics] table as `Score`s, greedy first, then by beam size and metric.

    A score is a number keyed `<metric>_<decoding>` (its split is the table's `split`) or
    `<split>_<metric>_<decoding>`: `bleu_greedy`, `test_chrf_beam5`, `rougeL_beam4`.
    """
    metrics = metrics or {}
    rows = []
    for key, value in metrics.items():
        match = _SCORE_KEY.match(key)
        if match and isinstance(value, (int, float)) and not isinstance(value, bool):
            split, metric, decoding, beam = match.groups()
            rows.append(Score(key, split or metrics.get("split"), metric, decoding, int(beam or 1), value))
    order = list(METRIC_TYPES)
    split_order = {split: i for i, split in enumerate(SPLITS)}
    return sorted(rows, key=lambda row: (split_order.get(row.split, -1), row.beam, order.index(row.metric)))


def decoding_label(decoding):
    """"greedy" -> "greedy", "beam5" -> "beam search, beam 5"."""
    return "greedy" if decoding == "greedy" else f"beam search, beam {decoding[len('beam'):]}"


def evaluation_commands(preset):
    """The `attn-zoo evaluate` commands that measure the preset's scores, one per beam size.

    Greedy search is `--beam 1`; beam search takes its length penalty from the model's
    `search_defaults` (the recipe's [evaluation] table). With nothing measured yet: greedy and beam 5 on the test split.
    """
    rows = scores(preset.get("metrics"))
    runs = list(dict.fromkeys((row.split or "test", row.beam) for row in rows))
    runs = runs or [("test", 1), ("test", DEFAULT_BEAM)]
    return [f"attn-zoo evaluate {preset['name']} --split {split} --beam {beam}" for split, beam in runs]


def _sentences(metrics, split):
    for key in ("sentences", f"{split}_sentences", f"{split}_examples"):
        if isinstance(metrics.get(key), int) and not isinstance(metrics.get(key), bool):
            return key, metrics[key]
    return None, None


def eval_results(preset):
    """The preset's measured scores as huggingface_hub `EvalResult`s (empty when none)."""
    from huggingface_hub import EvalResult

    data = preset.get("data") or {}
    task = preset.get("task", "translation")
    results = []
    for row in scores(preset.get("metrics")):
        metric_type, metric_name = METRIC_TYPES[row.metric]
        results.append(
            EvalResult(
                task_type=PIPELINE_TAGS.get(task, task),
                task_name=task.replace("-", " ").capitalize(),
                dataset_type=data.get("dataset", preset["name"]),
                dataset_name=data.get("dataset_name", data.get("dataset", preset["name"])),
                dataset_split=row.split,
                metric_type=metric_type,
                metric_name=f"{metric_name} ({row.split + ', ' if row.split else ''}{decoding_label(row.decoding)})",
                metric_value=row.value,
            )
        )
    return results


# -- Front matter -----------------------------------------------------------------------------


def _languages(preset):
    data = preset.get("data") or {}
    languages = []
    for key in ("source_language", "target_language"):
        if data.get(key) and data[key] not in languages:
            languages.append(data[key])
    return languages


def _attention_tag(attention):
    return str(attention).replace("_", "-")


def tags(preset):
    """The card's tags: the library's, then the architecture's."""
    attention = preset.get("attention") or "none"
    result = ["keras", "keras-attn-zoo", "seq2seq", "rnn"]
    if attention == "none":
        result.append("no-attention")
    else:
        result += ["attention", _attention_tag(attention)]
    result += [tag for key, tag in (("copy", "pointer-generator"), ("coverage", "coverage")) if preset.get(key)]
    return result + TASK_TAGS.get(preset.get("task"), [])


def front_matter(preset):
    """The card's YAML metadata, as huggingface_hub's `ModelCardData`."""
    from huggingface_hub import ModelCardData

    data = preset.get("data") or {}
    results = eval_results(preset)
    return ModelCardData(
        language=_languages(preset) or None,
        license=preset.get("license"),
        library_name="keras",
        pipeline_tag=PIPELINE_TAGS.get(preset.get("task")),
        datasets=[data["dataset"]] if data.get("dataset") else None,
        tags=tags(preset),
        model_name=preset["name"] if results else None,
        eval_results=results or None,
    )


# -- Body -------------------------------------------------------------------------------------


def _language(code):
    return f"{LANGUAGE_NAMES.get(code, code)} ({code})"


def _usage_name(preset):
    """What `from_pretrained` takes for this model: the preset name, else its hf:// URI."""
    if preset["name"] in preset_registry.preset_names():
        return preset["name"]
    if preset.get("hub_repo"):
        return f"hf://{preset['hub_repo']}"
    return preset["name"]


def _paper(attention):
    attention = attention or "none"
    if attention.startswith("luong"):
        return PAPERS["luong"]
    return PAPERS.get(attention)


def _duration(seconds):
    minutes = int(round(float(seconds) / 60))
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _summary(preset):
    data = preset.get("data") or {}
    lines = [f"# {preset['name']}", ""]
    if preset.get("description"):
        lines += [preset["description"], ""]
    task = preset.get("task", "translation")
    if data.get("source_language") and data.get("target_language") and task == "translation":
        task = f"translation, {_language(data['source_language'])} → {_language(data['target_language'])}"
    lines.append(f"- **Task:** {task}")
    lines.append(f"- **Attention:** `{preset.get('attention') or 'none'}`")
    papers = [PAPERS[preset["paper"]] if preset.get("paper") else _paper(preset.get("attention"))]
    papers += [PAPERS["copy"]] if preset.get("copy") else []
    papers = [paper for paper in papers if paper]
    if papers:
        lines.append(f"- **Paper{'s' if len(papers) > 1 else ''}:** {'; '.join(papers)}")
    if preset.get("copy") or preset.get("coverage"):
        parts = [label for key, label in (("copy", "copy switch (pointer-generator)"), ("coverage", "coverage")) if preset.get(key)]
        lines.append(f"- **Also:** {' and '.join(parts)}")
    if preset.get("recipe"):
        lines.append(f"- **Recipe:** `{preset['recipe']}` in the keras-attn-zoo repository")
    if preset.get("license"):
        lines.append(f"- **License of the weights:** {preset['license']}")
    if data.get("license"):
        lines.append(f"- **License of the training data:** {data['license']}")
    if preset.get("hub_repo"):
        lines.append(f"- **Hub repository:** [{preset['hub_repo']}](https://huggingface.co/{preset['hub_repo']})")
    lines.append("- **Library:** [keras-attn-zoo](https://pypi.org/project/keras-attn-zoo/) (Keras 3)")
    return lines


def _data_section(preset):
    data = preset.get("data") or {}
    if not data:
        return []
    lines = ["", "## Training data", ""]
    if data.get("dataset_name"):
        lines.append(f"{data['dataset_name']}.")
        lines.append("")
    for key, label in (
        ("source_text", "Source"),
        ("target_text", "Target"),
        ("license", "License"),
        ("origin", "Origin"),
        ("split", "Split"),
    ):
        if data.get(key):
            lines.append(f"- **{label}:** {data[key]}")
    if data.get("rebuild"):
        lines.append(f"- **Rebuild it:** `{data['rebuild']}`")
    return lines


def _fresh_variables(names, shown=6):
    """The variables a fine-tune's start lacked, kept at their initial values; a long list shortened."""
    listed = ", ".join(f"`{v}`" for v in names[:shown])
    if len(names) > shown:
        listed += f" and {len(names) - shown} more"
    return f"{len(names)} variable(s) it lacked kept their initial values: {listed}" if names else "no variable started fresh"


def _training_section(preset, metadata):
    lines = ["", "## Training", ""]
    init = (metadata or {}).get("init_from")
    if preset.get("recipe"):
        how = "Trained from scratch" if not init else (
            f"Fine-tuned from `{init.get('name')}` (trained first, "
            f"{_duration(init.get('training_seconds') or 0)} to its best epoch {init.get('best_epoch')}; "
            + _fresh_variables(init.get("fresh_variables") or []) + ")"
        )
        lines += [
            f"{how} with `attn-zoo train {preset['recipe']}`; the recipe file holds the whole "
            "configuration (architecture, tokenizer, optimizer, early stopping) and the run resumes where it "
            "stopped when the same command is run again.",
            "",
        ]
    if not metadata:
        lines.append(
            "No checkpoint was bundled when this card was written, so it lists no parameter count or training "
            "time: they come from the checkpoint's `metadata.json`."
        )
        return lines
    facts = []
    if "parameters" in metadata:
        facts.append(("Parameters", _number(metadata["parameters"])))
    for key, label in (("train_examples", "Training pairs"), ("dev_examples", "Dev pairs")):
        if key in metadata:
            facts.append((label, _number(metadata[key])))
    if "best_epoch" in metadata:
        facts.append(("Best epoch (lowest dev loss)", _number(metadata["best_epoch"])))
    for key, label in (("dev_loss", "Dev loss at the best epoch"), ("train_loss", "Training loss at the best epoch")):
        if isinstance(metadata.get(key), (int, float)):
            facts.append((label, f"{metadata[key]:.4f}"))
    if "training_seconds" in metadata:
        facts.append(("Training time to the best epoch", _duration(metadata["training_seconds"])))
        if init and init.get("training_seconds"):
            total = metadata["training_seconds"] + init["training_seconds"]
            facts.append(("Training time, both phases", _duration(total)))
    if "seed" in metadata:
        facts.append(("Seed", str(metadata["seed"])))
    for key, label in (
        ("keras_attn_zoo_version", "keras-attn-zoo version"),
        ("keras_version", "Keras version"),
        ("backend", "Keras backend"),
    ):
        if key in metadata:
            facts.append((label, str(metadata[key])))
    if facts:
        lines += ["| | |", "|---|---|"] + [f"| {label} | {value} |" for label, value in facts]
    hyperparameters = metadata.get("hyperparameters") or {}
    if hyperparameters:
        lines += ["", "Hyperparameters:", "", "| | |", "|---|---|"]
        lines += [f"| `{key}` | {_number(value)} |" for key, value in hyperparameters.items() if value is not None]
    return lines


def _usage_section(preset):
    name = _usage_name(preset)
    example = json.dumps(preset.get("example", "Your text here."), ensure_ascii=False)
    command_input, call = USAGE.get(preset.get("task"), DEFAULT_USAGE)
    beam = DEFAULT_BEAM
    return [
        "",
        "## How to use",
        "",
        "```bash",
        "pip install keras-attn-zoo",
        f"attn-zoo predict {name} {command_input.format(example=example)}",
        "```",
        "",
        "```python",
        "import keras_attn_zoo",
        "",
        f"model = keras_attn_zoo.from_pretrained({json.dumps(name)})",
        f"prediction = {call.format(example=example, beam=beam)}",
        "print(prediction.text)",
        "```",
        "",
        "`from_pretrained` also takes `hf://namespace/name@revision` (a branch, tag or commit) and a local "
        "checkpoint folder. Loading checks every file's sha256 and never runs code from the checkpoint.",
    ]


def _search_line(search_defaults):
    """One sentence naming the default search settings the scores were measured with."""
    if not search_defaults:
        return []
    names = {"beam_size": "beam", "alpha": "length penalty α", "beta": "coverage penalty β"}
    settings = ", ".join(f"{names.get(key, key)} = {value}" for key, value in search_defaults.items())
    return [
        f"The model's default search (its `search_defaults`, from the recipe's `[evaluation]`): {settings}. "
        "`predict_texts`, `attn-zoo predict`, `evaluate` and `export` use it unless told otherwise; "
        "greedy scores are beam 1 with the same settings.",
        "",
    ]


def _evaluation_section(preset, metadata=None):
    metrics = preset.get("metrics") or {}
    rows = scores(metrics)
    lines = ["", "## Evaluation", ""]
    commands = ["```bash", *evaluation_commands(preset), "```"]
    if not rows:
        lines += ["Not measured yet: this card reports no scores until they are measured. Measure them with:", ""]
        return lines + commands
    known = {"split", "bleu_signature", "chrf_signature"} | {row.key for row in rows}
    for split in dict.fromkeys(row.split for row in rows):
        split_rows = [row for row in rows if row.split == split]
        where = f"the {split} split" if split else "held-out data"
        count_key, count = _sentences(metrics, split)
        if count is not None:
            known.add(count_key)
            unit = "sentences" if preset.get("task", "translation") == "translation" else "examples"
            where += f" ({_number(count)} {unit})"
        names = [metric for metric in METRIC_TYPES if any(row.metric == metric for row in split_rows)]
        scale = "0-100 (CIDEr x 100)" if "cider" in names else "0-100"
        lines += [f"Corpus scores on {where}, {scale}, higher is better:", ""]
        table = {(row.metric, row.decoding): row.value for row in split_rows}
        lines.append("| Decoding | " + " | ".join(METRIC_TYPES[m][1] for m in names) + " |")
        lines.append("|---|" + "---:|" * len(names))
        for decoding in dict.fromkeys(row.decoding for row in split_rows):
            cells = [f"{table[(m, decoding)]:.2f}" if (m, decoding) in table else "" for m in names]
            lines.append(f"| {decoding_label(decoding)} | " + " | ".join(cells) + " |")
        lines.append("")
    if preset.get("figure"):
        lines += [f"![Attention of {preset['name']} over a test image, one panel per word]({preset['figure']})", ""]
    lines += _search_line((metadata or {}).get("search_defaults"))
    lines += ["Reproduce them with (greedy search is beam 1):", ""] + commands
    signatures = [(key, metrics[key]) for key in ("bleu_signature", "chrf_signature") if metrics.get(key)]
    if signatures:
        lines += ["", "sacreBLEU signatures:", ""] + [f"- {key.split('_')[0]}: `{value}`" for key, value in signatures]
    others = [(key, value) for key, value in metrics.items() if key not in known]
    if others:
        lines += ["", "Other measurements:", ""] + [f"- `{key}`: {_number(value)}" for key, value in others]
    return lines


def _limitations_section(preset):
    limitations = preset.get("limitations") or []
    if not limitations:
        return []
    return ["", "## Limitations", ""] + [f"- {item}" for item in limitations]


def render_card(preset, metadata=None):
    """The model card (README.md) of a preset, as a string.

    Args:
        preset: a preset dict (`keras_attn_zoo.presets.get_preset(name)`); only `name` is required,
            so a minimal dict works for a model that is not a preset.
        metadata: the checkpoint's metadata.json as a dict (parameter count, hyperparameters,
            training time), or None when there is no checkpoint yet.

    Returns:
        The card: YAML front matter between `---` lines, then Markdown.
    """
    lines = ["---", front_matter(preset).to_yaml(), "---", ""]
    lines += _summary(preset)
    lines += _data_section(preset)
    lines += _training_section(preset, metadata)
    lines += _usage_section(preset)
    lines += _evaluation_section(preset, metadata)
    lines += _limitations_section(preset)
    return "\n".join(lines) + "\n"


# -- The committed cards ----------------------------------------------------------------------


def preset_metadata(name):
    """The metadata.json of the preset's bundled checkpoint (with the `search_defaults` of its
    config.json), or None when none is bundled."""
    folder = preset_registry.bundled_checkpoint(name)
    if folder is None or not (folder / "metadata.json").is_file():
        return None
    metadata = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    config = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("config", {})
    if config.get("search_defaults"):
        metadata["search_defaults"] = config["search_defaults"]
    return metadata


def preset_card(name):
    """The card of preset `name`, with its bundled checkpoint's metadata when there is one."""
    return render_card(preset_registry.get_preset(name), preset_metadata(name))


def write_cards(folder=CARDS_DIR, check=False):
    """Write (or with `check`, compare) `<folder>/<name>.md` for every preset.

    Also writes the card into each bundled checkpoint folder as its README.md (which its hashes
    leave out), so a pushed checkpoint carries the same card. Returns the paths that were stale.
    """
    folder = Path(folder)
    stale = []
    for name in preset_registry.preset_names():
        card = preset_card(name)
        targets = [folder / f"{name}.md"]
        bundled = preset_registry.bundled_checkpoint(name)
        if bundled is not None:
            targets.append(bundled / "README.md")
        for path in targets:
            current = path.read_text(encoding="utf-8") if path.is_file() else None
            if current == card:
                continue
            stale.append(path)
            if not check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(card, encoding="utf-8")
    return stale


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m keras_attn_zoo.model_card", description="Generate the model cards from the presets."
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="rewrite the cards that changed")
    action.add_argument("--check", action="store_true", help="exit 1 if a card differs from a fresh render")
    parser.add_argument("--dir", type=Path, default=CARDS_DIR, help=f"the cards folder (default: {CARDS_DIR})")
    args = parser.parse_args(argv)
    stale = write_cards(args.dir, check=args.check)
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'} {path}")
    if args.check and stale:
        print("Run: python -m keras_attn_zoo.model_card --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
