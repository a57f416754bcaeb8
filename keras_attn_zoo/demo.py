"""The demo page: every model's output and attention in a browser (a Gradio app).

    from keras_attn_zoo.demo import build_demo
    build_demo(["bible_en_es_bahdanau", "runs/captioner/checkpoint"]).launch()

`build_demo` returns a `gradio.Blocks`, to launch, mount in a FastAPI app
(`gradio.mount_gradio_app`) or host as a Space; `attn-zoo demo` launches it. Gradio is an optional
dependency (`pip install 'keras-attn-zoo[demo]'`), imported only here.

The page has one tab per model and a side-by-side tab per kind of input with two models or more.
What a tab shows is chosen by the model's `input_kind` (see `EncoderDecoder`), never by its task:

- "text": an input box, beam size and length penalty, the output, and the attention as a heatmap
  (output words down, source words across; subword pieces merged into words, or not; each cell's
  weight under the pointer). Output words a copy switch copied (a pointer-generator's p_gen, in
  `Prediction.details["copy"]`) are highlighted, the stronger the lower p_gen.
- "image": an image file and example images, the caption, and the attention of the word chosen
  in the list over the picture (`plots.attention_overlays`, as the model card figures draw it).

Every model is called through `predict_inputs` and its `Prediction`s. Examples come from the test
split of the model's recipe data (`recipe_file.find_recipe`); without that data a tab says so in
one line. Bad input (an empty or huge text, a file that is not an image, an image of too many
pixels) gives a message in the page, and the app serves the next request as before.
"""

import functools
import html
import re
import threading
from pathlib import Path

import numpy as np

MAX_TEXT_CHARACTERS = 20_000  # longer texts are refused in the page (a model reads at most ~100 pieces)
EXAMPLES = 6  # examples per tab, spread over the test split's lengths
LONG_EXAMPLE_WORDS = 40  # the example shown first: the one closest to this many words
WORD_MARKER = "\u2581"  # SentencePiece's start-of-word marker
END = "</s>"
_VIRIDIS = np.array(  # matplotlib's viridis at 0, 0.25, 0.5, 0.75, 1 (the model cards' colour map)
    [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float64
)
_LOCK = threading.Lock()  # one model call at a time: Gradio runs events in threads


# --------------------------------------------------------------------------------------------
# Pieces, words and colours: plain functions, no Gradio.


def word_groups(pieces):
    """`[(word, [piece indices])]`: SentencePiece pieces merged into the words they spell.

    A piece starting with the word marker starts a word, as does the first piece; the end of
    the output ("</s>") is a word of its own.
    """
    groups = []
    for index, piece in enumerate(pieces):
        piece = str(piece)
        if not groups or piece == END or piece.startswith(WORD_MARKER) or groups[-1][0] == END:
            groups.append([piece, [index]])
        else:
            groups[-1][0] += piece
            groups[-1][1].append(index)
    return [(_label(word), indices) for word, indices in groups]


def _label(piece):
    if piece == END:
        return END
    return piece.replace(WORD_MARKER, " ").strip() or piece


def merge_attention(weights, output_pieces, source_pieces):
    """`(weights, output words, source words, output groups)` with pieces merged into words.

    A source word's weight is the sum over its pieces (the attention it got); an output word's
    row is the mean of its pieces' rows, so every row still sums to what a piece's row does.
    """
    weights = np.asarray(weights, dtype=np.float64)
    outputs = word_groups(output_pieces)
    sources = word_groups(source_pieces)
    rows = np.stack([weights[indices].mean(axis=0) for _, indices in outputs])
    merged = np.stack([rows[:, indices].sum(axis=1) for _, indices in sources], axis=1)
    return merged, [word for word, _ in outputs], [word for word, _ in sources], [i for _, i in outputs]


def _colour(weight):
    """CSS rgb() of `weight` in [0, 1] on viridis."""
    position = float(np.clip(weight, 0.0, 1.0)) * (len(_VIRIDIS) - 1)
    low = int(min(position, len(_VIRIDIS) - 2))
    r, g, b = _VIRIDIS[low] + (position - low) * (_VIRIDIS[low + 1] - _VIRIDIS[low])
    return f"rgb({r:.0f},{g:.0f},{b:.0f})"


_HEATMAP_CSS = """<style>
.attn-zoo-heatmap {overflow-x: auto; font-size: 12px}
.attn-zoo-heatmap table {border-collapse: collapse; margin: 0}
.attn-zoo-heatmap td {width: 22px; min-width: 22px; height: 20px; padding: 0; border: 1px solid #fff; position: relative}
.attn-zoo-heatmap td:hover {outline: 2px solid #e4572e; z-index: 1}
.attn-zoo-heatmap td:hover::after {content: attr(data-label); position: absolute; left: 24px; top: -22px; z-index: 2;
  white-space: nowrap; background: #222; color: #fff; padding: 2px 6px; border-radius: 3px; pointer-events: none}
.attn-zoo-heatmap th.source {writing-mode: vertical-rl; transform: rotate(180deg); font-weight: normal;
  padding: 4px 0; text-align: left; white-space: nowrap}
.attn-zoo-heatmap th.output {text-align: right; font-weight: normal; padding: 0 6px; white-space: nowrap}
.attn-zoo-heatmap th.copied {font-weight: bold}
.attn-zoo-heatmap .note {color: #666; margin: 4px 0}
</style>"""


def heatmap_html(prediction, merge_words=True):
    """The attention of a text `Prediction` as an HTML table, or "" when it has none.

    One row per output word (or piece), one column per source word (or piece); each cell is
    coloured by its weight (viridis, 0 to 1) and carries it in `data-weight`, `title` and a label
    shown under the pointer. Output words a copy switch copied are highlighted in red, the
    stronger the lower their p_gen (`Prediction.details["copy"]`).
    """
    if prediction.attention is None or not np.asarray(prediction.attention).size:
        return ""
    weights = np.asarray(prediction.attention, dtype=np.float64)
    if not weights.any():  # a model without attention (the seq2seq baseline) returns zeros
        return (
            '<div class="attn-zoo-heatmap attn-zoo-no-attention"><p>No attention weights: this model reads the '
            "whole source through one context vector (its encoder's last state), the same for every output word.</p></div>"
        )
    outputs, sources = list(prediction.tokens), list(prediction.source_tokens)
    groups = [[t] for t in range(len(outputs))]
    if merge_words:
        weights, outputs, sources, groups = merge_attention(weights, outputs, sources)
    copy = prediction.details.get("copy") or []
    p_gens = [
        float(np.mean([copy[t]["p_gen"] for t in group if t < len(copy)])) if any(t < len(copy) for t in group) else None
        for group in groups
    ]
    header = "".join(f'<th class="source">{html.escape(word)}</th>' for word in sources)
    rows = []
    for r, word in enumerate(outputs):
        p_gen = p_gens[r]
        if p_gen is None:
            label = f'<th class="output">{html.escape(word)}</th>'
        else:
            copied = p_gen < 0.5
            label = (
                f'<th class="output{" copied" if copied else ""}" data-p-gen="{p_gen:.4f}" '
                f'title="p_gen {p_gen:.2f}{" (copied)" if copied else ""}" '
                f'style="background: rgba(228,87,46,{1.0 - p_gen:.2f})">{html.escape(word)}</th>'
            )
        cells = "".join(
            f'<td style="background:{_colour(w)}" data-weight="{w:.4f}" '
            f'data-label="{html.escape(word)} \u2190 {html.escape(sources[c])}: {w:.3f}" '
            f'title="{html.escape(word)} \u2190 {html.escape(sources[c])}: {w:.3f}"></td>'
            for c, w in enumerate(weights[r])
        )
        rows.append(f"<tr>{label}{cells}</tr>")
    unit = "words" if merge_words else "subword pieces"
    note = f"Rows: output {unit}; columns: source {unit}. Point at a cell for its weight."
    if copy:
        note += " Output words on red were copied from the source: the redder, the lower p_gen."
    return (
        f'{_HEATMAP_CSS}<div class="attn-zoo-heatmap" data-rows="{len(outputs)}" data-columns="{len(sources)}">'
        f'<p class="note">{note}</p><table><tr><th></th>{header}</tr>{"".join(rows)}</table></div>'
    )


# --------------------------------------------------------------------------------------------
# Models and their examples.


def _model_name(reference, model):
    name = getattr(model, "zoo_preset", None)
    if name:
        return name
    path = Path(str(reference))
    return path.parent.name if path.name == "checkpoint" and path.parent.name else path.name or str(reference)


def _load(models):
    """`[(name, reference, model)]` for references (preset names, folders, hf:// URIs) or loaded models."""
    from keras_attn_zoo import from_pretrained
    from keras_attn_zoo.presets import bundled_checkpoint, preset_names

    if models is None:
        models = [name for name in preset_names() if bundled_checkpoint(name) is not None]
        if not models:
            raise ValueError("No preset has a bundled checkpoint here; name MODELs (presets, folders, hf:// URIs).")
    loaded, names = [], set()
    for reference in models:
        model = reference if hasattr(reference, "predict_inputs") else from_pretrained(str(reference))
        if getattr(model, "input_kind", None) not in _KIND_TABS:
            raise ValueError(
                f"Received: a model with input_kind={getattr(model, 'input_kind', None)!r}; "
                f"expected one of {', '.join(map(repr, _KIND_TABS))}."
            )
        name = _model_name(reference, model) if not hasattr(reference, "predict_inputs") else _model_name(
            getattr(model, "name", "model"), model
        )
        while name in names:
            name += "'"
        names.add(name)
        loaded.append((name, reference, model))
    return loaded


def example_items(reference, model, kind):
    """`(items, note)`: the inputs of the test split of `model`'s recipe data, and a line when absent."""
    from keras_attn_zoo.errors import ZooError
    from keras_attn_zoo.recipe_file import data_file, find_recipe, load_recipe_file

    reference = getattr(model, "zoo_preset", None) or (None if hasattr(reference, "predict_inputs") else str(reference))
    recipe = find_recipe(reference, model)
    if recipe is None:
        return [], "No examples: no recipe file names this model's test data."
    try:
        spec = load_recipe_file(recipe)
        data_file(spec)
        return _EXAMPLE_READERS[kind](spec), None
    except (ZooError, OSError, ValueError) as error:
        return [], f"No examples: {' '.join(str(error).split())}"


def _text_examples(spec):
    from keras_attn_zoo.data import read_pairs

    data = spec["data"]
    sources, _ = read_pairs(
        data["path"], data["source"], data["target"], split=data.get("test_split", "test"), prefix=data.get("prefix")
    )
    return sources


def _image_examples(spec):
    from keras_attn_zoo.caption_data import read_captions

    data = spec["data"]
    captions = read_captions(
        data["path"], split=data.get("test_split", "test"), image_column=data["source"], caption_column=data["target"]
    )
    return [str(path) for path, _ in captions]


_EXAMPLE_READERS = {"text": _text_examples, "image": _image_examples}


def pick_examples(items, count=EXAMPLES, measure=lambda item: len(str(item).split())):
    """`count` items spread over the lengths of `items`, the one closest to 40 words first."""
    if len(items) <= count:
        return list(items)
    order = sorted(range(len(items)), key=lambda i: (measure(items[i]), i))
    chosen = [min(order, key=lambda i: abs(measure(items[i]) - LONG_EXAMPLE_WORDS))]
    for k in range(count):
        index = order[round(k * (len(order) - 1) / max(count - 1, 1))]
        if index not in chosen and len(chosen) < count:
            chosen.append(index)
    return [items[i] for i in chosen]


# --------------------------------------------------------------------------------------------
# Running a model for the page.


def _first_line(error):
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def run_model(model, item, beam_size, alpha):
    """`(prediction or None, message)`: one item through `model.predict_inputs`, with attention.

    The message is "" when all went well; otherwise one line for the page: a refused or cut
    input (the model's tab says what it refuses: `_KIND_TABS[model.input_kind].refuse`), an image
    that did not load, or the error of a failed call.
    """
    refusal = _KIND_TABS[model.input_kind].refuse(model, item)
    if refusal:
        return None, refusal
    try:
        with _LOCK:
            (prediction,) = model.predict_inputs(
                [item], beam_size=int(beam_size), alpha=float(alpha), batch_size=1,
                return_attention=True, return_details=True,
            )
    except Exception as error:  # the page shows it and keeps serving
        return None, f"error: {_first_line(error)}"
    if prediction.error is not None:
        return None, f"error: {prediction.error}"
    notes = []
    if prediction.truncated:
        notes.append(
            f"The input is longer than the model reads: only its first {getattr(model, 'max_source_length', '?')} "
            "subword pieces were translated."
        )
    if prediction.truncated_output:
        notes.append("The output stopped at its length limit: it is cut, not finished.")
    return prediction, " ".join(notes)


def image_word_maps(prediction, item):
    """`(words, maps)`: the caption's words (pieces merged, the end as "<end>") and the picture lit by each."""
    from keras_attn_zoo.images import decode_image
    from keras_attn_zoo.plots import attention_overlays

    if prediction is None or prediction.attention is None or not prediction.attention.size:
        return [], []
    groups = word_groups(prediction.tokens)
    rows = np.stack([np.asarray(prediction.attention)[indices].mean(axis=0) for _, indices in groups])
    _, lit = attention_overlays(decode_image(item), prediction.image_box, rows, prediction.grid[0])
    words = ["<end>" if word == END else word for word, _ in groups]
    return words, [_at_least(image, MAP_SIDE) for image in lit]


MAP_SIDE = 320  # pixels: a small picture's word maps are enlarged to this longer side for the page


def _at_least(image, side):
    from PIL import Image

    height, width = image.shape[:2]
    if max(height, width) >= side:
        return image
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))


# --------------------------------------------------------------------------------------------
# The page.


def _slug(name):
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() or "model"


def _search_controls(gr, model, slug):
    defaults = model.search_options()
    with gr.Row():
        beam = gr.Slider(1, 10, value=defaults["beam_size"], step=1, label="Beam size", elem_id=f"{slug}-beam")
        alpha = gr.Slider(0.0, 3.0, value=defaults["alpha"], step=0.1, label="Length penalty", elem_id=f"{slug}-alpha")
    return beam, alpha


class _TextTab:
    """The outputs of a text model: the answer (output text, a message line, the prediction) and its heatmap.

    A tab answers in two steps (`_wire_run`): `run` returns the answer, shown at once, then `draw`
    the figure from the prediction kept in `state`.
    """

    @staticmethod
    def input(gr, slug):
        return gr.Textbox(label="Input", lines=3, elem_id=f"{slug}-input")

    @staticmethod
    def options(gr, slug):
        return [gr.Checkbox(value=True, label="Merge subword pieces into words", elem_id=f"{slug}-merge")]

    def __init__(self, gr, slug, title=None):
        if title:
            gr.Markdown(f"**{title}**")
        self.output = gr.Textbox(label="Output", interactive=False, elem_id=f"{slug}-output")
        self.message = gr.Markdown(elem_id=f"{slug}-message")
        self.heatmap = gr.HTML(elem_id=f"{slug}-heatmap")
        self.state = gr.State(None)
        self.answer = [self.output, self.message, self.state]
        self.figure = [self.heatmap]

    @staticmethod
    def measure(item):
        """How long an example is, to spread the examples over lengths: its words."""
        return len(str(item).split())

    @staticmethod
    def usable(items):
        return items, None

    @staticmethod
    def refuse(model, item):
        """Why the page does not run `item` (an empty or huge text), or None."""
        if item is None or not item.strip():
            return "Nothing to run: enter a text."
        if len(item) > MAX_TEXT_CHARACTERS:
            return (
                f"The text has {len(item):,} characters; this page takes at most {MAX_TEXT_CHARACTERS:,} "
                f"(the model reads only its first {getattr(model, 'max_source_length', '?')} subword pieces)."
            )
        return None

    def run(self, model, item, beam, alpha):
        prediction, message = run_model(model, item, beam, alpha)
        return [prediction.text if prediction is not None else "", message, prediction]

    @staticmethod
    def draw(prediction, merge):
        return heatmap_html(prediction, merge) if prediction is not None else ""

    def wire_options(self, options):
        (merge,) = options
        merge.change(self.draw, [self.state, merge], self.figure, queue=False, **_DRAWING)


class _ImageTab:
    """The outputs of an image model: caption, a message line, the word list and the chosen word's map."""

    @staticmethod
    def input(gr, slug):
        return gr.File(label="Image", type="filepath", elem_id=f"{slug}-input")

    @staticmethod
    def options(gr, slug):
        return []

    @staticmethod
    def measure(item):
        return 0

    @staticmethod
    def usable(items):
        """The example images that are here; a line when none is."""
        present = [item for item in items if Path(item).is_file()]
        if items and not present:
            return [], f"No examples: the test images (e.g. {items[0]}) are not here."
        return present, None

    @staticmethod
    def refuse(model, item):
        """Why the page does not run `item` (no file), or None: the model says what does not decode."""
        return None if item else "Nothing to run: upload an image or pick an example."

    def __init__(self, gr, slug, title=None):
        if title:
            gr.Markdown(f"**{title}**")
        self.output = gr.Textbox(label="Caption", interactive=False, elem_id=f"{slug}-output")
        self.message = gr.Markdown(elem_id=f"{slug}-message")
        self.word = gr.Radio(choices=[], label="Word (its attention over the image)", elem_id=f"{slug}-word")
        self.map = gr.Image(label="Attention of the chosen word", type="numpy", interactive=False, elem_id=f"{slug}-map")
        self.state = gr.State(None)  # (prediction, image) of the last answer
        self.maps = gr.State(None)  # each word's map
        self.answer = [self.output, self.message, self.state]
        self.figure = [self.word, self.map, self.maps]
        self._gr = gr

    def run(self, model, item, beam, alpha):
        prediction, message = run_model(model, item, beam, alpha)
        if prediction is None:
            return ["", message, None]
        return [prediction.text, message, (prediction, item)]

    def draw(self, answer):
        if answer is None:
            return [self._gr.update(choices=[], value=None), None, None]
        words, maps = image_word_maps(*answer)
        choices = [(f"{i + 1}. {word}", i) for i, word in enumerate(words)]
        return [self._gr.update(choices=choices, value=0 if maps else None), maps[0] if maps else None, maps]

    def wire_options(self, options):
        self.word.change(
            lambda maps, index: maps[index] if maps and index is not None and 0 <= index < len(maps) else None,
            [self.maps, self.word], [self.map], queue=False, **_DRAWING,
        )


_KIND_TABS = {"text": _TextTab, "image": _ImageTab}

# The events that draw a figure from an answer already given: no API of their own, and kept out
# of the browser's run history (Gradio records every public event's inputs and outputs in one
# localStorage entry, rewritten whole at each run: with the heatmaps' HTML in it, it held 0.56 MB
# after eight runs and each click waited 30-110 ms on rewriting it; benchmarks/demo_latency.py).
_DRAWING = {"api_visibility": "undocumented"}


# A step of the page's own, between the answer and the figure: it resolves once the browser has
# painted the answer. Chained straight after the answer, the figure's request went out before the
# answer was painted, and the text showed about 40 ms later (an A/B of the two wirings in one run,
# both sentence lengths of benchmarks/demo_latency.py: page 197 -> 155 ms and 298 -> 241 ms).
_AFTER_PAINT = "() => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)))"


def _wire_run(button, run, inputs, tabs, options, api_name):
    """`button` runs `run(*inputs)` (the answers of `tabs`), then each tab draws its figure.

    The answer is the page's API endpoint `/<api_name>` (Gradio's client can call it); the
    drawing steps are not (`_DRAWING`).

    Straight to the handlers, not through Gradio's queue: a one-sentence answer is tens of
    milliseconds, which the queue's round trips would multiply (benchmarks/demo_latency.py); model
    calls are serialized by _LOCK anyway. The answer is shown (painted) before the figure is asked for.
    """
    answers = [component for tab in tabs for component in tab.answer]
    figures = [component for tab in tabs for component in tab.figure]

    def draw_all(*values):
        states, option_values = values[: len(tabs)], values[len(tabs):]
        drawn = []
        for tab, state in zip(tabs, states):
            drawn += _as_list(tab.draw(state, *option_values), len(tab.figure))
        return drawn

    event = button.click(run, inputs, answers, queue=False, show_progress="minimal", api_name=api_name)
    event = event.then(None, js=_AFTER_PAINT, queue=False, show_progress="hidden")
    event.then(draw_all, [tab.state for tab in tabs] + list(options), figures, queue=False, show_progress="hidden",
               **_DRAWING)


def _as_list(value, size):
    return list(value) if size > 1 else [value]


def _examples(gr, tab_type, input_box, reference, model, count):
    """The examples of `model`'s test split under `input_box`, or the line saying why there are none."""
    items, note = example_items(reference, model, model.input_kind)
    if note is None:
        items, note = tab_type.usable(pick_examples(items, count, tab_type.measure))
    if note or not items:
        gr.Markdown(note or "No examples: the test split is empty.", elem_classes=["attn-zoo-no-examples"])
        return
    gr.Examples(examples=[[item] for item in items], inputs=[input_box], label="Examples from the test split")


def build_demo(models=None, examples=EXAMPLES, title="keras-attn-zoo: attention you can see"):
    """The demo page as a `gradio.Blocks` (not launched).

    Args:
        models: preset names, checkpoint folders, hf:// URIs or loaded models (anything
            `from_pretrained` takes, or its result); default: every preset with a bundled
            checkpoint.
        examples: examples per tab, from the test split of each model's recipe data.
        title: the page's heading.

    Returns:
        a `gradio.Blocks`; `.zoo_models` holds `[(tab name, reference, model)]`.
    """
    import gradio as gr

    loaded = _load(models)
    kinds = {}
    for name, reference, model in loaded:
        kinds.setdefault(model.input_kind, []).append((name, reference, model))
    with gr.Blocks(title=title, analytics_enabled=False) as demo:
        gr.Markdown(f"# {title}")
        with gr.Tabs():
            for name, reference, model in loaded:
                slug = _slug(name)
                kind = model.input_kind
                tab_type = _KIND_TABS[kind]
                with gr.Tab(name, id=slug, elem_id=f"tab-{slug}"):
                    with gr.Row():
                        with gr.Column():
                            input_box = tab_type.input(gr, slug)
                            beam, alpha = _search_controls(gr, model, slug)
                            options = tab_type.options(gr, slug)
                            button = gr.Button("Run", variant="primary", elem_id=f"{slug}-run")
                            _examples(gr, tab_type, input_box, reference, model, examples)
                        with gr.Column():
                            tab = tab_type(gr, slug)
                    run = functools.partial(tab.run, model)
                    _wire_run(button, run, [input_box, beam, alpha], [tab], options, api_name=slug.replace("-", "_"))
                    tab.wire_options(options)
            for kind, group in kinds.items():
                if len(group) >= 2:
                    _side_by_side(gr, kind, group, examples)
    demo.zoo_models = loaded
    return demo


def _side_by_side(gr, kind, group, examples):
    """One input through two models of the same kind, outputs side by side (default: attention vs none)."""
    from keras_attn_zoo.presets import get_preset, preset_names

    by_name = {name: model for name, _, model in group}
    names = list(by_name)
    plain = [n for n in names if n in preset_names() and get_preset(n).get("attention") == "none"]
    right = plain[0] if plain else names[1]
    left = next(n for n in names if n != right)
    slug = f"compare-{kind}"
    tab_type = _KIND_TABS[kind]
    with gr.Tab(f"Side by side ({kind})", id=slug, elem_id=f"tab-{slug}"):
        input_box = tab_type.input(gr, slug)
        beam, alpha = _search_controls(gr, by_name[left], slug)
        options = tab_type.options(gr, slug)
        button = gr.Button("Run both", variant="primary", elem_id=f"{slug}-run")
        reference = next(ref for name, ref, _ in group if name == left)
        _examples(gr, tab_type, input_box, reference, by_name[left], examples)
        with gr.Row():
            columns = []
            for side, default in (("left", left), ("right", right)):
                with gr.Column():
                    choice = gr.Dropdown(names, value=default, label="Model", elem_id=f"{slug}-{side}-model")
                    columns.append((choice, tab_type(gr, f"{slug}-{side}")))

    def run_both(item, beam, alpha, left_name, right_name):
        answers = []
        for (_, tab), name in zip(columns, (left_name, right_name)):
            answers += tab.run(by_name[name], item, beam, alpha)
        return answers

    inputs = [input_box, beam, alpha, columns[0][0], columns[1][0]]
    _wire_run(button, run_both, inputs, [tab for _, tab in columns], options, api_name=slug.replace("-", "_"))
    for _, tab in columns:
        tab.wire_options(options)


def launch_demo(models=None, host="127.0.0.1", port=7860, **launch_options):
    """Build the page (`build_demo`) and serve it on http://host:port until interrupted."""
    demo = build_demo(models)
    demo.queue(default_concurrency_limit=1)
    return demo.launch(server_name=host, server_port=port, **launch_options)
