"""Corpus scores (sacreBLEU), BLEU by source length, ROUGE, and the two plots."""

import json
import subprocess
import sys

import numpy as np
import pytest
import sacrebleu

from keras_attn_zoo import evaluation, plots

HYPOTHESES = [
    "The cat sat on the mat.",
    "There is a dog in the garden.",
    "He reads a book every evening.",
    "The weather was cold yesterday morning.",
]
REFERENCES = [
    "The cat sat on the mat.",
    "A dog is in the garden.",
    "Every evening he reads a book.",
    "Yesterday morning the weather was cold.",
]


def words(n):
    return " ".join(f"w{i}" for i in range(n))


# --- corpus_scores ---------------------------------------------------------------------------


def test_identical_text_scores_100():
    scores = evaluation.corpus_scores(REFERENCES, REFERENCES)
    assert scores["bleu"] == 100.0
    assert scores["chrf"] == 100.0
    assert scores["n"] == len(REFERENCES)


def test_disjoint_text_scores_about_zero():
    scores = evaluation.corpus_scores(["alpha beta gamma delta"], ["six quiz yours"])
    assert scores["bleu"] == pytest.approx(0.0, abs=1e-6)
    assert scores["chrf"] == pytest.approx(0.0, abs=1e-6)


def test_scores_equal_sacrebleu_called_directly():
    scores = evaluation.corpus_scores(HYPOTHESES, REFERENCES)
    bleu = sacrebleu.corpus_bleu(HYPOTHESES, [REFERENCES])
    chrf = sacrebleu.corpus_chrf(HYPOTHESES, [REFERENCES])
    assert 0.0 < bleu.score < 100.0
    assert scores["raw"]["bleu"] == bleu.score
    assert scores["raw"]["chrf"] == chrf.score
    assert scores["bleu"] == round(bleu.score, 2)
    assert scores["chrf"] == round(chrf.score, 2)
    assert scores["raw"]["precisions"] == pytest.approx(bleu.precisions)
    assert (scores["raw"]["hyp_len"], scores["raw"]["ref_len"]) == (bleu.sys_len, bleu.ref_len)


def test_scoring_is_cased():
    lower = [h.lower() for h in REFERENCES]
    assert evaluation.corpus_scores(lower, REFERENCES)["bleu"] < 100.0


def test_signatures_name_13a_and_chrf_settings():
    scores = evaluation.corpus_scores(HYPOTHESES, REFERENCES)
    assert "tok:13a" in scores["bleu_signature"]
    assert "case:mixed" in scores["bleu_signature"]
    assert "nrefs:1" in scores["bleu_signature"]
    assert f"version:{sacrebleu.__version__}" in scores["bleu_signature"]
    assert "nc:6" in scores["chrf_signature"] and "nw:0" in scores["chrf_signature"]


def test_length_mismatch_names_both_lengths():
    with pytest.raises(ValueError, match=r"3 hypotheses and 2 references"):
        evaluation.corpus_scores(["a", "b", "c"], ["a", "b"])


@pytest.mark.parametrize(
    "hypotheses, references, message",
    [
        ([], [], "0 hypotheses"),
        ("a string", ["a string"], "expected a list of strings"),
        (["ok", None], ["ok", "fine"], r"hypotheses\[1\] of type NoneType"),
    ],
)
def test_malformed_inputs_are_rejected(hypotheses, references, message):
    with pytest.raises(ValueError, match=message):
        evaluation.corpus_scores(hypotheses, references)


# --- length buckets --------------------------------------------------------------------------

SOURCES = [words(3), words(20), words(30), words(40)]


def test_length_buckets_assigns_by_source_word_count():
    assert evaluation.length_buckets(SOURCES) == [0, 1, 2, 3]
    # Bucket edges are inclusive on both sides.
    edges = [words(n) for n in (0, 15, 16, 25, 26, 35, 36)]
    assert evaluation.length_buckets(edges) == [0, 0, 1, 1, 2, 2, 3]


def test_bleu_by_length_scores_each_bucket_separately():
    # Only the 20-word sentence is translated correctly.
    hypotheses = ["wrong output here", words(20), "x y z", "nothing"]
    references = [words(3), words(20), words(30), words(40)]
    by_length = evaluation.bleu_by_length(SOURCES, hypotheses, references)
    assert [b["bucket"] for b in by_length] == ["<=15", "16-25", "26-35", "36+"]
    assert [b["n"] for b in by_length] == [1, 1, 1, 1]
    assert [b["bleu"] for b in by_length] == [0.0, 100.0, 0.0, 0.0]


def test_empty_bucket_reports_n_zero_and_no_score():
    sources = [words(3), words(40), words(5)]
    by_length = evaluation.bleu_by_length(sources, HYPOTHESES[:3], REFERENCES[:3])
    assert [b["n"] for b in by_length] == [2, 0, 0, 1]
    assert by_length[1]["bleu"] is None and by_length[1]["chrf"] is None
    expected = sacrebleu.corpus_bleu(
        [HYPOTHESES[0], HYPOTHESES[2]], [[REFERENCES[0], REFERENCES[2]]]
    )
    assert by_length[0]["raw"]["bleu"] == expected.score


def test_custom_buckets_and_labels():
    by_length = evaluation.bleu_by_length(
        SOURCES, HYPOTHESES, REFERENCES, buckets=((0, 9), (10, 29), (30, None))
    )
    assert [(b["bucket"], b["n"]) for b in by_length] == [("<=9", 1), ("10-29", 1), ("30+", 2)]


@pytest.mark.parametrize(
    "buckets", [(), ((0, 10), (5, 20)), ((0, None), (10, 20)), ((10, 5),), ((0, 1.5),)]
)
def test_malformed_buckets_are_rejected(buckets):
    with pytest.raises(ValueError, match="Received: buckets="):
        evaluation.length_buckets(SOURCES, buckets)


def test_source_outside_every_bucket_is_an_error():
    with pytest.raises(ValueError, match=r"sources\[3\] with 40 words"):
        evaluation.length_buckets(SOURCES, buckets=((0, 35),))


def test_source_count_mismatch_is_an_error():
    with pytest.raises(ValueError, match="3 sources and 4 hypotheses"):
        evaluation.bleu_by_length(SOURCES[:3], HYPOTHESES, REFERENCES)


def test_evaluate_predictions_combines_and_is_json_ready():
    result = evaluation.evaluate_predictions(SOURCES, HYPOTHESES, REFERENCES)
    assert set(result) == {
        "bleu", "chrf", "bleu_signature", "chrf_signature", "n", "raw", "by_length"
    }
    assert result["bleu"] == evaluation.corpus_scores(HYPOTHESES, REFERENCES)["bleu"]
    assert [b["n"] for b in result["by_length"]] == [1, 1, 1, 1]
    assert json.loads(json.dumps(result)) == result


def test_evaluation_imports_neither_tensorflow_nor_keras():
    code = (
        "import sys, keras_attn_zoo.evaluation, keras_attn_zoo.plots; "
        "print(sorted(m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"


# --- ROUGE -----------------------------------------------------------------------------------


def test_rouge_without_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "rouge_score", None)
    monkeypatch.setitem(sys.modules, "rouge_score.rouge_scorer", None)
    with pytest.raises(ImportError, match="pip install rouge-score"):
        evaluation.rouge_scores(HYPOTHESES, REFERENCES)


def test_rouge_identical_and_disjoint():
    pytest.importorskip("rouge_score")
    same = evaluation.rouge_scores(REFERENCES, REFERENCES)
    assert same["rouge1"] == same["rougeL"] == 100.0
    disjoint = evaluation.rouge_scores(["alpha beta"], ["one two"])
    assert disjoint["rouge1"] == 0.0


def test_rouge_uses_reference_as_target():
    pytest.importorskip("rouge_score")
    # A short hypothesis inside a long reference: precision 100, recall 50.
    scores = evaluation.rouge_scores(["cat sat"], ["cat sat down here"], rouge_types=("rouge1",))
    assert scores["raw"]["rouge1"]["precision"] == pytest.approx(100.0)
    assert scores["raw"]["rouge1"]["recall"] == pytest.approx(50.0)


# --- plots -----------------------------------------------------------------------------------


def read_png(path):
    import matplotlib.image

    return matplotlib.image.imread(path)


def by_length_result(bleus):
    labels = ["<=15", "16-25", "26-35", "36+"]
    return [{"bucket": b, "n": 10, "bleu": s} for b, s in zip(labels, bleus)]


def test_plot_bleu_by_length_writes_png_of_requested_size(tmp_path):
    results = {
        "bahdanau": by_length_result([30.0, 25.0, 20.0, 12.0]),
        "luong": by_length_result([29.0, 26.0, 21.0, None]),
    }
    path = plots.plot_bleu_by_length(results, tmp_path / "out" / "bleu.png", title="test")
    assert path.stat().st_size > 0
    image = read_png(path)
    assert image.shape[:2] == (450, 700)  # default figsize (7, 4.5) at 100 dpi
    # Not a blank canvas: the lines and labels put many colours on it.
    assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 20
    path = plots.plot_bleu_by_length(results, tmp_path / "small.png", figsize=(4, 3), dpi=50)
    assert read_png(path).shape[:2] == (150, 200)


def test_plot_bleu_by_length_rejects_mismatched_buckets(tmp_path):
    results = {"a": by_length_result([1, 2, 3, 4]), "b": by_length_result([1, 2, 3, 4])[:3]}
    with pytest.raises(ValueError, match="same buckets"):
        plots.plot_bleu_by_length(results, tmp_path / "bleu.png")
    with pytest.raises(ValueError, match="non-empty dict"):
        plots.plot_bleu_by_length({}, tmp_path / "bleu.png")
    assert not (tmp_path / "bleu.png").exists()


def test_plot_attention_writes_png_of_requested_size(tmp_path):
    weights = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1]])
    path = plots.plot_attention(
        weights, ["le", "$", "chat"], ["the", "cat"], tmp_path / "attn.png", figsize=(4, 3), dpi=80
    )
    assert path.stat().st_size > 0
    assert read_png(path).shape[:2] == (240, 320)


def test_plot_attention_default_size_grows_with_tokens(tmp_path):
    short = plots.plot_attention(np.full((2, 2), 0.5), ["a", "b"], ["x", "y"], tmp_path / "s.png")
    n = 30
    long = plots.plot_attention(
        np.eye(n), [f"s{i}" for i in range(n)], [f"o{i}" for i in range(n)], tmp_path / "l.png"
    )
    short_h, short_w = read_png(short).shape[:2]
    long_h, long_w = read_png(long).shape[:2]
    assert long_w > short_w and long_h > short_h


@pytest.mark.parametrize(
    "shape, n_source, n_output", [((3, 4), 5, 3), ((4, 3), 4, 3), ((3,), 3, 1), ((0, 0), 0, 0)]
)
def test_plot_attention_rejects_shape_mismatch(tmp_path, shape, n_source, n_output):
    source = [f"s{i}" for i in range(n_source)]
    output = [f"o{i}" for i in range(n_output)]
    with pytest.raises(ValueError, match=rf"weights of shape \({shape[0]},"):
        plots.plot_attention(np.zeros(shape), source, output, tmp_path / "attn.png")
    assert not (tmp_path / "attn.png").exists()


def test_plot_attention_marks_rows_in_red(tmp_path):
    weights = np.full((3, 3), 1 / 3)
    plain = read_png(plots.plot_attention(weights, ["a", "b", "c"], ["x", "y", "z"], tmp_path / "p.png"))
    marked = read_png(
        plots.plot_attention(weights, ["a", "b", "c"], ["x", "y", "z"], tmp_path / "m.png", marked=[1], marked_label="copied")
    )
    def reddish(image):
        rgb = image[..., :3]  # floats in [0, 1]; tab:red is (0.84, 0.15, 0.16)
        return int(((rgb[..., 0] > 0.6) & (rgb[..., 1] < 0.4) & (rgb[..., 2] < 0.4)).sum())

    assert reddish(plain) == 0 and reddish(marked) > 0
    with pytest.raises(ValueError, match="marked rows"):
        plots.plot_attention(weights, ["a", "b", "c"], ["x", "y", "z"], tmp_path / "bad.png", marked=[3])


def test_plot_scores_draws_a_bar_per_value(tmp_path):
    table = {"lead-6": {"ROUGE-L": 24.6, "rare": 42.4}, "model": {"ROUGE-L": 30.1, "rare": None}}
    path = plots.plot_scores(table, tmp_path / "bars.png", title="t", figsize=(4, 3), dpi=50)
    assert read_png(path).shape[:2] == (150, 200)
    with pytest.raises(ValueError, match="non-empty"):
        plots.plot_scores({}, tmp_path / "none.png")
