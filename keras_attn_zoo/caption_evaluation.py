"""Scores for captions: the COCO caption metrics, exact match, and where the attention looked.

`caption_scores(hypotheses, references)` scores generated captions against several references per
image with `pycocoevalcap` (the COCO caption evaluation code): BLEU-1..4, METEOR, ROUGE-L and
CIDEr (CIDEr-D's document frequencies come from the references given, as in the COCO server), on
captions tokenized by the Stanford PTB tokenizer (lowercased, punctuation removed). METEOR and
the PTB tokenizer are Java programs: without `java` on the PATH, METEOR is left out (None) and the
captions are tokenized by `simple_tokenize` instead, each said in one warning line.

    {"bleu1": 71.2, "bleu2": 55.0, "bleu3": 41.3, "bleu4": 30.9, "meteor": 25.1, "rougeL": 52.8,
     "cider": 95.4, "exact_match": 12.5, "n": 2000, "tokenizer": "ptb",
     "raw": {"bleu1": 71.2345..., ..., "cider_per_image": [...]}}

Scores are on a 0-100 scale (pycocoevalcap's 0-1 x 100; CIDEr's 0-10 x 100, as papers report it),
rounded to `DECIMALS` places; the unrounded ones stay under "raw".

`attention_localisation(...)` measures whether the decoder looked at the right place when it named
a thing: for scenes whose records list their items and cells (Fashion-MNIST scenes), the share of
generated item words whose attention peak falls in that item's cell.

Plain Python and numpy: neither Keras nor TensorFlow is imported.
"""

import collections
import logging
import re
import shutil

import numpy as np

from keras_attn_zoo.evaluation import DECIMALS, _require

logger = logging.getLogger("keras_attn_zoo")

# What `simple_tokenize` drops: the PTB tokenizer's punctuation in pycocoevalcap, as characters.
_PUNCTUATION = re.compile(r"[\"`()\[\]{}?!,:;]|(?<![\w])['.-]+|['.-]+(?![\w])")
BLEU_ORDERS = 4


def _round(value):
    return None if value is None else round(float(value), DECIMALS)


def java_available():
    """Whether `java` is on the PATH (METEOR and the PTB tokenizer need it)."""
    return shutil.which("java") is not None


def simple_tokenize(text):
    """Lowercase, split off and drop the punctuation the PTB tokenizer drops, split on whitespace.

    The stand-in for the PTB tokenizer when Java is missing: "A tee, on the left." -> "a tee on the left".
    """
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


def check_references(references, hypotheses=None):
    """References as a list of lists of strings: one string per item becomes a one-item list.

    Raises:
        ValueError: something other than strings or lists of strings, an item with no reference,
            or a count that differs from the hypotheses'.
    """
    if isinstance(references, str) or not hasattr(references, "__len__"):
        raise ValueError(
            f"Received: references of type {type(references).__name__}; expected a list with, for each item, "
            "a reference string or a list of them."
        )
    result = []
    for index, entry in enumerate(references):
        entry = [entry] if isinstance(entry, str) else entry
        if not isinstance(entry, (list, tuple)) or not entry or not all(isinstance(r, str) for r in entry):
            raise ValueError(
                f"Received: references[{index}]={entry!r}; expected a string or a non-empty list of strings."
            )
        result.append(list(entry))
    if hypotheses is not None and len(hypotheses) != len(result):
        raise ValueError(
            f"Received: {len(hypotheses)} hypotheses and {len(result)} references; "
            "expected the same number of each (a list of references per hypothesis)."
        )
    return result


def _tokenized(hypotheses, references, use_java):
    """`(gts, res, tokenizer name)`: pycocoevalcap's dicts {index: [tokenized caption, ...]}."""
    if use_java:
        module = _require("pycocoevalcap.tokenizer.ptbtokenizer", "pycocoevalcap", "Caption scoring")
        tokenizer = module.PTBTokenizer()
        gts = tokenizer.tokenize({i: [{"caption": r} for r in refs] for i, refs in enumerate(references)})
        res = tokenizer.tokenize({i: [{"caption": h}] for i, h in enumerate(hypotheses)})
        return gts, res, "ptb"
    gts = {i: [simple_tokenize(r) for r in refs] for i, refs in enumerate(references)}
    res = {i: [simple_tokenize(h)] for i, h in enumerate(hypotheses)}
    return gts, res, "simple"


def exact_match(hypotheses, references, tokenize=simple_tokenize):
    """Share (0-100) of hypotheses equal to one of their references after `tokenize`."""
    references = check_references(references, hypotheses)
    if not hypotheses:
        raise ValueError("Received: 0 hypotheses; expected at least one.")
    hits = sum(tokenize(h) in {tokenize(r) for r in refs} for h, refs in zip(hypotheses, references))
    return 100.0 * hits / len(hypotheses)


def caption_scores(hypotheses, references, java=None):
    """BLEU-1..4, METEOR, ROUGE-L, CIDEr and exact match of captions against several references each.

    Args:
        hypotheses: list of generated captions, one string per image ("" is a valid, bad caption).
        references: list with, per image, a list of reference captions (a string stands for a
            list of one).
        java: use the Java programs (PTB tokenizer, METEOR); default: when `java` is on the PATH.

    Returns:
        `{"bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rougeL", "cider", "exact_match", "n",
        "references", "tokenizer", "raw"}`: scores 0-100 rounded to `DECIMALS` places ("meteor"
        None without Java), the image count, the mean references per image, "ptb" or "simple",
        and under "raw" the unrounded scores and CIDEr per image.

    Raises:
        ImportError: `pycocoevalcap` is not installed.
        ValueError: the lists differ in length, are empty, or hold something else than strings.
    """
    if isinstance(hypotheses, str) or not all(isinstance(h, str) for h in hypotheses):
        raise ValueError("Received: hypotheses that are not a list of strings; expected one string per image.")
    hypotheses = list(hypotheses)
    references = check_references(references, hypotheses)
    if not hypotheses:
        raise ValueError("Received: 0 hypotheses and 0 references; expected at least one image.")
    _require("pycocoevalcap", "pycocoevalcap", "Caption scoring")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    use_java = java_available() if java is None else bool(java)
    if not use_java:
        logger.warning(
            "Caption scores without Java: METEOR is left out and captions are tokenized by simple_tokenize, "
            "not the PTB tokenizer (install Java 8+ for both)."
        )
    gts, res, tokenizer = _tokenized(hypotheses, references, use_java)
    raw = {}
    bleu, _ = Bleu(BLEU_ORDERS).compute_score(gts, res, verbose=0)
    for order, value in enumerate(bleu, start=1):
        raw[f"bleu{order}"] = 100.0 * value
    raw["meteor"] = None
    if use_java:
        from pycocoevalcap.meteor.meteor import Meteor

        # METEOR's jar reads "SCORE ||| refs ||| hypothesis" lines: an empty field confuses it.
        meteor_res = {i: [h[0] or "."] for i, h in res.items()}
        meteor_gts = {i: [r or "." for r in refs] for i, refs in gts.items()}
        raw["meteor"] = 100.0 * Meteor().compute_score(meteor_gts, meteor_res)[0]  # its jar ends with it
    raw["rougeL"] = 100.0 * float(Rouge().compute_score(gts, res)[0])
    cider, per_image = Cider().compute_score(gts, res)
    raw["cider"] = 100.0 * float(cider)
    raw["exact_match"] = exact_match([h[0] for h in res.values()], [gts[i] for i in res], tokenize=lambda t: t)
    result = {key: _round(value) for key, value in raw.items()}
    raw["cider_per_image"] = [round(100.0 * float(v), 4) for v in per_image]
    result.update(
        n=len(hypotheses),
        references=round(sum(len(r) for r in references) / len(references), DECIMALS),
        tokenizer=tokenizer,
        raw=raw,
    )
    return result


# --------------------------------------------------------------------------------------------
# Localisation: did the attention peak on the thing the word names?


def word_starts(tokens):
    """The step of each word's first piece in SentencePiece `tokens` ("▁a", "▁te", "e", "</s>").

    A piece that begins with "▁" starts a word; "</s>" and the other special pieces end the list.
    Returns `[(word, step), ...]` with the words' pieces joined, the "▁" removed.
    """
    words = []
    for step, piece in enumerate(tokens):
        if piece in ("</s>", "<s>", "<pad>"):
            break
        if piece.startswith("▁") or not words:
            words.append([piece.lstrip("▁"), step])
        else:
            words[-1][0] += piece
    return [(word, step) for word, step in words if word]


def peak_cell(weights, grid, scene_grid, box=None):
    """The scene cell `(row, column)` under the attention peak of one step.

    Args:
        weights: (grid·grid,) attention weights over the encoder's grid, row-major.
        grid: the encoder grid's side (6 for EfficientNet-Lite0 at 192 px).
        scene_grid: the scene's cells a side (3 for the Fashion-MNIST scenes).
        box: where the picture lies in the model's square (`images.ImageBox`: top, left, height,
            width in pixels of the square, whose side is the picture's longer side, as
            `images.fit_to_square` makes it); None: the picture fills the square.

    Returns:
        `(row, column)`, or None when the peak's centre falls outside the picture (white padding).
    """
    weights = np.asarray(weights, dtype=float).reshape(-1)
    if weights.size != grid * grid:
        raise ValueError(f"Received: {weights.size} attention weights; expected grid*grid = {grid * grid}.")
    y, x = divmod(int(np.argmax(weights)), grid)
    # the centre of the peak position, as a fraction of the square
    fy, fx = (y + 0.5) / grid, (x + 0.5) / grid
    if box is not None:
        square = max(box.height, box.width)
        fy = (fy * square - box.top) / box.height
        fx = (fx * square - box.left) / box.width
    if not (0 <= fy < 1 and 0 <= fx < 1):
        return None
    return int(fy * scene_grid), int(fx * scene_grid)


def attention_localisation(predictions, scene_items, grid=None, scene_grid=3, item_words=None):
    """Share of generated item words whose attention peak falls in that item's scene cell.

    For each image, the words of the generated caption that name an item (`item_words`) are taken
    in order, each with the attention of the step that produced its first piece, and paired with
    the scene's items in reading order (row by row, left to right, as the captions name them): the
    k-th item word generated with the k-th item of the scene. A pair is a hit when the attention
    peak (argmax over the grid) lies in that item's cell.

    How mismatches count:
    - an item word beyond the scene's items (the model named more things than there are) is a
      miss: it counts in the denominator, never as a hit;
    - a scene item the caption never names adds nothing (that is recall, which BLEU/CIDEr see);
    - a paired word whose label differs from the item's ("shirt" for a tee) is scored on the
      item's cell all the same (the position in the caption says where the model meant), and is
      counted in `label_mismatches`;
    - a peak on the padding around a non-square picture is a miss.

    Args:
        predictions: `Prediction`s with `tokens` and `attention` ((steps, grid·grid), from
            `return_attention=True`), and `image_box` when the picture was padded.
        scene_items: per prediction, the scene's items `[{"label", "row", "column"}, ...]`
            (a record's "items"), or None for an image without them (left out).
        grid: the encoder grid's side; default: the square root of the attention's width.
        scene_grid: the scene's cells a side.
        item_words: the words that name an item; default: every label in `scene_items`.

    Returns:
        `{"localisation": 62.5, "item_words": 8, "hits": 5, "beyond_scene": 1,
        "label_mismatches": 2, "images": 4}`: the share 0-100 rounded to `DECIMALS` places
        (None when no item word was generated), how many generated item words it pools, the hits,
        the words beyond the scene's items, the paired words naming another item, and the images
        that had items.
    """
    if len(predictions) != len(scene_items):
        raise ValueError(
            f"Received: {len(predictions)} predictions and {len(scene_items)} scene item lists; expected one per prediction."
        )
    if item_words is None:
        item_words = {item["label"] for items in scene_items if items for item in items}
    item_words = {str(word).lower() for word in item_words}
    counts = collections.Counter()
    for prediction, items in zip(predictions, scene_items):
        if items is None:
            continue
        counts["images"] += 1
        attention = getattr(prediction, "attention", None)
        if attention is None:
            raise ValueError("Received: a prediction without attention; expected predictions made with return_attention=True.")
        ordered = sorted(items, key=lambda item: (item["row"], item["column"]))
        named = [
            (word, step)
            for word, step in word_starts(prediction.tokens)
            if simple_tokenize(word) in item_words
        ]
        box = getattr(prediction, "image_box", None)
        side = grid or int(round(np.sqrt(np.shape(attention)[-1])))
        for k, (word, step) in enumerate(named):
            counts["item_words"] += 1
            if k >= len(ordered):
                counts["beyond_scene"] += 1
                continue
            item = ordered[k]
            counts["label_mismatches"] += simple_tokenize(word) != str(item["label"]).lower()
            cell = peak_cell(attention[step], side, scene_grid, box)
            counts["hits"] += cell == (item["row"], item["column"])
    total = counts["item_words"]
    return {
        "localisation": _round(100.0 * counts["hits"] / total) if total else None,
        "item_words": total,
        "hits": counts["hits"],
        "beyond_scene": counts["beyond_scene"],
        "label_mismatches": counts["label_mismatches"],
        "images": counts["images"],
    }
