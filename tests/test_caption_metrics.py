"""Caption scores (pycocoevalcap), attention localisation on hand-made attention, the captioning
entry of the metrics registry, and the task readers."""

import json
import logging

import numpy as np
import pytest

from keras_attn_zoo import caption_evaluation
from keras_attn_zoo.caption_evaluation import (
    attention_localisation,
    caption_scores,
    exact_match,
    peak_cell,
    simple_tokenize,
    word_starts,
)
from keras_attn_zoo.images import ImageBox
from keras_attn_zoo.inference import Prediction
from keras_attn_zoo.task_metrics import metrics_for

HYPOTHESES = ["a tee on the left", "a bag at the top", ""]
REFERENCES = [["a tee on the left", "a shirt on the left"], "a bag at the bottom", ["a coat"]]


def test_scores_against_several_references_without_java(caplog):
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    with caplog.at_level(logging.WARNING, logger="keras_attn_zoo"):
        scores = caption_scores(HYPOTHESES, REFERENCES, java=False)
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "METEOR is left out" in warning and "PTB tokenizer" in warning
    assert scores["meteor"] is None and scores["tokenizer"] == "simple" and scores["n"] == 3
    gts = {0: ["a tee on the left", "a shirt on the left"], 1: ["a bag at the bottom"], 2: ["a coat"]}
    res = {0: ["a tee on the left"], 1: ["a bag at the top"], 2: [""]}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    assert scores["raw"]["bleu4"] == pytest.approx(100 * bleu[3])
    assert scores["raw"]["cider"] == pytest.approx(100 * Cider().compute_score(gts, res)[0])
    assert scores["exact_match"] == pytest.approx(33.33)
    assert scores["raw"]["cider_per_image"][2] == 0.0  # the empty caption
    assert scores["references"] == pytest.approx(4 / 3, abs=0.01)


def test_more_references_can_only_help():
    one = caption_scores(["a bag at the top"], [["a coat at the top"]], java=False)
    two = caption_scores(["a bag at the top"], [["a coat at the top", "a bag at the top"]], java=False)
    assert one["bleu4"] < two["bleu4"] == 100.0 and two["exact_match"] == 100.0 > one["exact_match"]


@pytest.mark.slow
@pytest.mark.skipif(not caption_evaluation.java_available(), reason="no java on this machine")
def test_scores_with_java_have_meteor_and_ptb_tokens():
    scores = caption_scores(["A tee, on the left."], [["a tee on the left"]])
    assert scores["tokenizer"] == "ptb" and scores["exact_match"] == 100.0
    assert scores["meteor"] > 90 and scores["bleu1"] == pytest.approx(100.0)


def test_bad_inputs_say_what_was_expected():
    with pytest.raises(ValueError, match=r"references\[1\]=\[\]; expected a string or a non-empty list"):
        caption_scores(["a", "b"], [["a"], []], java=False)
    with pytest.raises(ValueError, match="2 hypotheses and 1 references"):
        caption_scores(["a", "b"], [["a"]], java=False)


def test_simple_tokenize_and_exact_match():
    assert simple_tokenize("A T-shirt, on the left.") == "a t-shirt on the left"
    assert exact_match(["A bag, at the top."], [["a bag at the top"]]) == 100.0
    assert exact_match(["a bag"], [["a bag at the top"]]) == 0.0


# -- Localisation ------------------------------------------------------------------------------


def one_hot(position, positions=36):
    row = np.full(positions, 0.1 / (positions - 1))
    row[position] = 0.9
    return row


def grid_position(row, column, grid=6):
    return row * grid + column


def test_word_starts_join_pieces_and_stop_at_eos():
    tokens = ["▁a", "▁te", "e", "▁on", "▁the", "▁left", "</s>", "▁x"]
    assert word_starts(tokens) == [("a", 0), ("tee", 1), ("on", 3), ("the", 4), ("left", 5)]


@pytest.mark.parametrize(
    "position, expected", [((0, 0), (0, 0)), ((0, 1), (0, 0)), ((1, 1), (0, 0)), ((2, 3), (1, 1)), ((5, 4), (2, 2))]
)
def test_peak_cell_maps_a_6x6_grid_onto_3x3_cells(position, expected):
    assert peak_cell(one_hot(grid_position(*position)), 6, 3) == expected


def test_peak_cell_on_a_padded_picture():
    # A 100x60 picture fitted into a square of 100: columns 20..79 hold it, the rest is padding.
    # Grid column centres 8.3, 25, 41.7, 58.3, 75, 91.7 px: 0.08, 0.36, 0.64, 0.92 of the picture.
    box = ImageBox(top=0, left=20, height=100, width=60, original_height=100, original_width=60)
    cells = [peak_cell(one_hot(grid_position(5, column)), 6, 3, box) for column in range(6)]
    assert cells == [None, (2, 0), (2, 1), (2, 1), (2, 2), None]


def scene_prediction(words_and_peaks):
    """A Prediction whose word i (one piece each) peaks at grid position peaks[i] (None: uniform)."""
    tokens, rows = [], []
    for word, peak in words_and_peaks:
        tokens.append("▁" + word)
        rows.append(np.full(36, 1 / 36) if peak is None else one_hot(grid_position(*peak)))
    tokens.append("</s>")
    rows.append(np.full(36, 1 / 36))
    return Prediction(text=" ".join(w for w, _ in words_and_peaks), tokens=tokens, attention=np.stack(rows))


ITEMS = [{"label": "tee", "row": 1, "column": 2}, {"label": "bag", "row": 0, "column": 1}]  # not in reading order


def test_localisation_counts_hits_misses_and_mismatches():
    right = scene_prediction([("a", None), ("bag", (1, 2)), ("at", None), ("the", None), ("top", None),
                              ("and", None), ("a", None), ("tee", (2, 5))])
    # reading order: bag (0, 1) first, then tee (1, 2); both peaks land in their cells
    wrong = scene_prediction([("a", None), ("shirt", (0, 2)), ("and", None), ("a", None), ("tee", (0, 0)),
                              ("and", None), ("a", None), ("bag", (4, 4))])
    # shirt pairs with bag's cell (0, 1): its peak (0, 2) is cell (0, 1): a hit, and a label mismatch
    # (shirt is a known item word here); tee pairs with (1, 2): peak in (0, 0): a miss; bag is
    # a third item word of a two-item scene: a miss beyond the scene
    found = attention_localisation([right, wrong, right], [ITEMS, ITEMS, None],
                                   item_words={"tee", "bag", "shirt"})
    assert found == {"localisation": 60.0, "item_words": 5, "hits": 3, "beyond_scene": 1,
                     "label_mismatches": 1, "images": 2}


def test_localisation_default_item_words_and_no_item_words():
    silent = scene_prediction([("nothing", (0, 0))])
    found = attention_localisation([silent], [ITEMS])
    assert found["localisation"] is None and found["item_words"] == 0 and found["images"] == 1
    with pytest.raises(ValueError, match="return_attention=True"):
        attention_localisation([Prediction(text="a bag")], [ITEMS])


# -- The registry ------------------------------------------------------------------------------


def test_captioning_metrics_registry(monkeypatch):
    monkeypatch.setattr(caption_evaluation, "java_available", lambda: False)
    metrics = metrics_for("captioning")
    assert metrics.headline[0] == ("cider", "CIDEr") and metrics.uses_attention
    assert metrics_for("image-to-text") is metrics
    prediction = scene_prediction([("a", None), ("bag", (0, 2)), ("at", None), ("the", None), ("top", None)])
    extras = {"items": [[ITEMS[1]], None], "predictions": [prediction, Prediction(text="a coat")]}
    scores = metrics.score(["x.png", "y.png"], ["a bag at the top", "a coat"], [["a bag at the top"], "a coat"], None, extras)
    assert scores["exact_match"] == 100.0 and scores["localisation"] == 100.0
    assert scores["localisation_counts"]["item_words"] == 1
    text = "\n".join(metrics.lines(scores))
    assert "CIDEr" in text and "METEOR" in text and "(no Java: left out)" in text and "localisation %" in text
    without = metrics.score(["x.png"], ["a coat"], [["a coat"]])
    assert "localisation" not in without


def test_text_tasks_take_one_reference_each():
    translation = metrics_for("translation")
    assert translation.score(["a"], ["la casa"], [["la casa"]])["bleu"] == translation.score(["a"], ["la casa"], ["la casa"])["bleu"]
    with pytest.raises(ValueError, match=r"references\[0\] with 2 references; translation is scored against one"):
        translation.score(["a"], ["la casa"], [["la casa", "una casa"]])


def test_caption_reader_groups_references_and_keeps_items(tmp_path):
    from keras_attn_zoo.task_data import read_examples

    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes(b"not read here")
    records = [
        {"image": "a.png", "caption": "a bag at the top", "split": "test", "items": ITEMS[1:]},
        {"image": "b.png", "caption": "a coat", "split": "test"},
        {"image": "a.png", "caption": "one bag at the top", "split": "test", "items": ITEMS[1:]},
        {"image": "c.png", "caption": "a tee", "split": "train"},
    ]
    path = tmp_path / "captions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    examples = read_examples("captioning", path, "image", "caption", split="test")
    assert examples.inputs == [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    assert examples.references == [["a bag at the top", "one bag at the top"], ["a coat"]]
    assert examples.extras == {"items": [ITEMS[1:], None]}
    assert examples.head(1).extras == {"items": [ITEMS[1:]]}
