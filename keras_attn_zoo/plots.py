"""Figures for model cards and reports: BLEU by source length, attention heatmaps, attention over images.

Matplotlib is imported inside each function and drawn on an explicit Agg canvas (no pyplot, no
global backend switch), so importing this module is free and plotting works on machines without
a display. Each function writes one PNG, creating its folder if needed, and returns its path.
"""

import math
from pathlib import Path

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _new_figure(figsize, dpi):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=figure.dpi)
    return path


def _bucket_table(results):
    """Checks `results` and returns (bucket labels, {model: [bleu or nan]}, [n or None])."""
    if not isinstance(results, dict) or not results:
        raise ValueError(
            f"Received: results of type {type(results).__name__} with "
            f"{len(results) if hasattr(results, '__len__') else 'no'} entries; expected a "
            "non-empty dict of model name -> list of bucket dicts from `bleu_by_length`."
        )
    labels = None
    counts = None
    series = {}
    for model, buckets in results.items():
        try:
            model_labels = [bucket["bucket"] for bucket in buckets]
            bleus = [bucket["bleu"] for bucket in buckets]
            model_counts = [bucket.get("n") for bucket in buckets]
        except (TypeError, KeyError) as error:
            raise ValueError(
                f"Received: results[{model!r}] = {buckets!r}; expected a list of dicts with "
                "'bucket', 'bleu' and 'n' keys, as `bleu_by_length` returns."
            ) from error
        if not model_labels:
            raise ValueError(f"Received: results[{model!r}] = []; expected at least one bucket.")
        if labels is None:
            labels, counts = model_labels, model_counts
        elif model_labels != labels:
            raise ValueError(
                f"Received: buckets {model_labels} for {model!r} and {labels} for "
                f"{next(iter(results))!r}; expected every model scored on the same buckets."
            )
        elif model_counts != counts:
            counts = None  # Different test sets: sentence counts are not shared, so not shown.
        series[model] = [math.nan if bleu is None else float(bleu) for bleu in bleus]
    return labels, series, counts


def plot_bleu_by_length(results, path, title=None, *, figsize=(7.0, 4.5), dpi=100):
    """Plots BLEU against source-length bucket, one line with markers per model.

    Args:
        results: `{model name: bleu_by_length(...)}`; every model must use the same buckets. An
            empty bucket (`bleu` None) leaves a gap in that model's line. When every model has
            the same sentence count in a bucket, it is shown under the bucket label.
        path: the PNG file to write.
        title: figure title; default "BLEU by source length".
        figsize: figure size in inches; the PNG is `figsize * dpi` pixels.
        dpi: pixels per inch.

    Returns:
        the `Path` written.

    Raises:
        ValueError: `results` is empty, malformed, or the models' buckets differ.
    """
    labels, series, counts = _bucket_table(results)
    figure = _new_figure(figsize, dpi)
    axes = figure.add_subplot()
    positions = list(range(len(labels)))
    top = 0.0
    for index, (model, bleus) in enumerate(series.items()):
        axes.plot(
            positions,
            bleus,
            marker=_MARKERS[index % len(_MARKERS)],
            linewidth=1.8,
            markersize=7,
            label=str(model),
        )
        top = max([top] + [b for b in bleus if not math.isnan(b)])
    tick_labels = labels
    if counts is not None and all(n is not None for n in counts):
        tick_labels = [f"{label}\n(n={n})" for label, n in zip(labels, counts)]
    axes.set_xticks(positions, tick_labels)
    axes.set_xlim(-0.4, len(labels) - 0.6)
    axes.set_ylim(0, max(top * 1.15, 1.0))
    axes.set_xlabel("Source length (words)")
    axes.set_ylabel("BLEU")
    axes.set_title(title if title is not None else "BLEU by source length")
    axes.grid(True, axis="y", alpha=0.4)
    axes.legend(title="Model" if len(series) > 1 else None)
    return _save(figure, path)


def _attention_figsize(n_source, n_output):
    width = min(max(0.4 * n_source + 2.5, 5.0), 24.0)
    height = min(max(0.35 * n_output + 1.5, 4.0), 24.0)
    return width, height


def _label_fontsize(n_tokens, inches):
    """Points per label: at most 10, smaller when the labels would overlap, never below 5."""
    spacing_points = 72.0 * max(inches - 2.0, 1.0) / n_tokens
    return min(10.0, max(5.0, 0.55 * spacing_points))


def plot_attention(
    weights, source_tokens, output_tokens, path, title=None, *, figsize=None, dpi=100, marked=None, marked_label=None
):
    """Draws attention weights as a heatmap: source tokens across, output tokens down.

    Row i shows how output token i spread its attention over the source. Weights in [0, 1] (the
    softmax probabilities the layers return) use a fixed 0-1 colour scale, so figures of
    different sentences compare; other values are scaled to their own range.

    Args:
        weights: array-like of shape (len(output_tokens), len(source_tokens)), e.g. one
            example's `(T_out, T_src)` slice of an attention decoder's weights.
        source_tokens: the source tokens, labels of the x axis (rotated to stay readable).
        output_tokens: the output tokens, labels of the y axis.
        path: the PNG file to write.
        title: figure title; default none.
        figsize: figure size in inches; default grows with the token counts (5-24 inches wide,
            4-24 high). The PNG is `figsize * dpi` pixels.
        dpi: pixels per inch.
        marked: optional output rows to highlight (their labels in bold red), e.g. the tokens a
            pointer-generator copied.
        marked_label: what the highlight means, written under the figure.

    Returns:
        the `Path` written.

    Raises:
        ValueError: `weights` is not 2-D, is empty, or its shape does not match the token counts,
            or a marked row is out of range.
    """
    import numpy as np

    weights = np.asarray(weights, dtype=np.float64)
    source_tokens = [str(token) for token in source_tokens]
    output_tokens = [str(token) for token in output_tokens]
    expected = (len(output_tokens), len(source_tokens))
    if weights.shape != expected or 0 in expected:
        raise ValueError(
            f"Received: weights of shape {weights.shape}, {len(source_tokens)} source_tokens and "
            f"{len(output_tokens)} output_tokens; expected weights of shape {expected} = "
            "(len(output_tokens), len(source_tokens)), with at least one token of each."
        )
    marked = sorted({int(row) for row in (marked or ())})
    if marked and not 0 <= marked[0] <= marked[-1] < len(output_tokens):
        raise ValueError(f"Received: marked rows {marked}; expected rows in [0, {len(output_tokens)}).")
    finite = weights[np.isfinite(weights)]
    probabilities = finite.size > 0 and finite.min() >= 0.0 and finite.max() <= 1.0
    if figsize is None:
        figsize = _attention_figsize(len(source_tokens), len(output_tokens))

    figure = _new_figure(figsize, dpi)
    axes = figure.add_subplot()
    image = axes.imshow(
        weights,
        cmap="viridis",
        aspect="auto",
        interpolation="nearest",
        vmin=0.0 if probabilities else None,
        vmax=1.0 if probabilities else None,
    )
    axes.set_xticks(
        range(len(source_tokens)),
        source_tokens,
        rotation=60,
        ha="right",
        rotation_mode="anchor",
        fontsize=_label_fontsize(len(source_tokens), figsize[0]),
        parse_math=False,
    )
    axes.set_yticks(
        range(len(output_tokens)),
        output_tokens,
        fontsize=_label_fontsize(len(output_tokens), figsize[1]),
        parse_math=False,
    )
    for row in marked:
        label = axes.get_yticklabels()[row]
        label.set_color("tab:red")
        label.set_fontweight("bold")
    axes.set_xlabel("Source" + (f"\n(red output tokens: {marked_label})" if marked and marked_label else ""))
    axes.set_ylabel("Output")
    if title is not None:
        axes.set_title(title)
    # A bar about 0.4 inch wide that spans most of the height, whatever the figure size.
    figure.colorbar(
        image,
        ax=axes,
        label="Attention weight",
        fraction=min(0.05, 0.4 / figsize[0]),
        aspect=max(20.0, 2.0 * figsize[1]),
        pad=0.02,
    )
    return _save(figure, path)


_DISPLAY_SIDE = 480  # pixels: larger images are shrunk for the figure (the panels are about 2 inches)


def _word(token):
    """A subword piece as a panel title: SentencePiece's word marker dropped, the end shown as <end>."""
    if token == "</s>":
        return "<end>"
    word = str(token).replace("\u2581", " ").strip()
    return word or repr(str(token))


def attention_overlays(image, box, attention, grid):
    """The picture lit by each row of `attention`, as `plot_image_attention` draws its panels.

    Each row (weights over the `grid` x `grid` positions, row-major) is upsampled (bilinear) to
    the square the model saw, cut to where the picture lies in it (`box`) unless `image` is that
    square, and lights the picture: full brightness where the weight is the largest of all rows,
    30% where it is 0. Images over 480 pixels on a side are shrunk first.

    Args:
        image: RGB uint8 (H, W, 3), the original or the model's square (checked by the caller).
        box: the `keras_attn_zoo.images.ImageBox` of the picture in the square.
        attention: (steps, grid * grid) weights.
        grid: the side of the encoder's square feature grid.

    Returns:
        `(shown, lit)`: the (possibly shrunk) picture, and one uint8 array of its shape per row.
    """
    import numpy as np
    from PIL import Image

    image = np.asarray(image)
    attention = np.asarray(attention, dtype=np.float64)
    size = max(box.height, box.width)
    original = (box.original_height, box.original_width)
    on_square = image.shape[:2] == (size, size) and original != (size, size)
    height, width = image.shape[:2]
    if max(height, width) > _DISPLAY_SIDE:  # a photo of many megapixels: shrink it for the figure
        scale = _DISPLAY_SIDE / max(height, width)
        shown_size = (max(1, round(width * scale)), max(1, round(height * scale)))
        shown = np.asarray(Image.fromarray(image).resize(shown_size, Image.BILINEAR))
    else:
        shown_size, shown = (width, height), image
    top = float(attention.max()) if attention.size and attention.max() > 0 else 1.0
    lit = []
    for row in attention.reshape(len(attention), grid, grid).astype(np.float32):
        square = Image.fromarray(row, mode="F").resize((size, size), Image.BILINEAR)
        if not on_square:
            square = square.crop((box.left, box.top, box.left + box.width, box.top + box.height))
        weights = np.asarray(square.resize(shown_size, Image.BILINEAR), dtype=np.float32) / top
        lit.append((shown * (0.3 + 0.7 * np.clip(weights, 0.0, 1.0))[..., None]).astype(np.uint8))
    return shown, lit


def plot_image_attention(image, box, attention, tokens, path, grid, title=None, *, columns=5, dpi=100):
    """Show, Attend and Tell's figure: the image, then one panel per output word with its attention.

    Each word's attention over the encoder's `grid` x `grid` feature positions is upsampled
    (bilinear) to the square the model saw, cut to where the picture lies in it (`box`), and
    lights the picture: full brightness where the weight is the figure's largest, dimmed to 30%
    where it is 0, so what the model looked at keeps its colours. Every panel shares that scale,
    so panels compare; each panel's title is its word and that step's largest weight.

    Args:
        image: RGB uint8 (H, W, 3): the original image (H, W == the box's original size) or the
            padded square the model saw (`images.load_image`).
        box: the `keras_attn_zoo.images.ImageBox` of the picture in the square.
        attention: (len(tokens), grid * grid) weights, row-major over the grid.
        tokens: the output pieces ("</s>" is drawn as <end>).
        path: the PNG file to write.
        grid: the side of the encoder's square feature grid.
        title: figure title; default the caption.
        columns: panels per row.
        dpi: pixels per inch.

    Returns:
        the `Path` written.

    Raises:
        ValueError: shapes that do not agree: attention not (len(tokens), grid * grid), or an
            image that is neither the original nor the square of `box`.
    """
    import numpy as np

    image = np.asarray(image)
    attention = np.asarray(attention, dtype=np.float64)
    tokens = [str(token) for token in tokens]
    grid = int(grid)
    if attention.ndim != 2 or attention.shape != (len(tokens), grid * grid) or not tokens:
        raise ValueError(
            f"Received: attention of shape {attention.shape} for {len(tokens)} tokens and grid={grid}; expected "
            f"({len(tokens)}, {grid * grid}) = (len(tokens), grid * grid), with at least one token."
        )
    size = max(box.height, box.width)  # the square's side: the picture's longer side fills it
    original = (box.original_height, box.original_width)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[:2] not in (original, (size, size)):
        raise ValueError(
            f"Received: an image of shape {image.shape}; expected RGB (H, W, 3) of the original size "
            f"{original} or of the model's square ({size}, {size})."
        )
    shown, lit = attention_overlays(image, box, attention, grid)
    height, width = shown.shape[:2]

    panels = len(tokens) + 1
    columns = max(1, min(columns, panels))
    rows = -(-panels // columns)
    panel_width = 2.3
    panel_height = panel_width * height / width + 0.4
    figure = _new_figure((panel_width * columns, panel_height * rows + 0.45), dpi)
    caption = " ".join(_word(token) for token in tokens if token != "</s>")
    figure.suptitle(title if title is not None else caption or "(empty caption)", fontsize=12, parse_math=False)
    axes = figure.subplots(rows, columns, squeeze=False)
    for index, panel in enumerate(axes.flat):
        panel.set_axis_off()
        if index >= panels:
            continue
        if index == 0:
            panel.imshow(shown, interpolation="antialiased")
            panel.set_title("image", fontsize=10, color="0.35")
            continue
        step = index - 1
        panel.imshow(lit[step], interpolation="antialiased")
        panel.set_title(f"{_word(tokens[step])}  ({attention[step].max():.2f})", fontsize=10, parse_math=False)
    return _save(figure, path)


def plot_scores(table, path, title=None, *, figsize=(9.0, 4.5), dpi=100):
    """A grouped bar chart: one group per figure (ROUGE-L, rare-word recall, ...), one bar per system.

    Args:
        table: `{system name: {figure name: value or None}}`; every system is drawn with the
            figures of the first one, in that order (a missing or None value draws no bar).
        path: the PNG file to write.
        title: figure title; default none.
        figsize, dpi: the PNG is `figsize * dpi` pixels.

    Returns:
        the `Path` written.

    Raises:
        ValueError: `table` is empty or a system's entry is not a dict.
    """
    if not isinstance(table, dict) or not table or not all(isinstance(v, dict) for v in table.values()):
        raise ValueError("Received: a table that is not a non-empty {system: {figure: value}} dict.")
    systems = list(table)
    figures = list(table[systems[0]])
    width = 0.8 / len(systems)
    figure = _new_figure(figsize, dpi)
    axes = figure.add_subplot()
    for i, system in enumerate(systems):
        xs, ys = [], []
        for j, name in enumerate(figures):
            value = table[system].get(name)
            if value is not None:
                xs.append(j - 0.4 + width * (i + 0.5))
                ys.append(float(value))
        bars = axes.bar(xs, ys, width=width * 0.95, label=system)
        axes.bar_label(bars, fmt="%.1f", fontsize=6, padding=1)
    axes.set_xticks(range(len(figures)), figures, fontsize=8)
    axes.legend(fontsize=8)
    if title is not None:
        axes.set_title(title)
    return _save(figure, path)
