"""The serving SavedModel: strings in, strings out, loaded in a fresh process without the package."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from keras_attn_zoo.data import read_pairs
from keras_attn_zoo.export import export_saved_model
from keras_attn_zoo.recipes import translation
from keras_attn_zoo.tokenizer import SubwordTokenizer

FIXTURES = Path(__file__).parent / "fixtures"
# An untrained model finds eos at once likeliest under a beam: min_length gives outputs to compare.
BEAM_OPTIONS = {"alpha": 0.6, "no_repeat_ngram_size": 2, "max_length": 15, "min_length": 5}

# Runs in a fresh interpreter: only TensorFlow and tensorflow-text, with keras_attn_zoo made
# unimportable. tensorflow-text itself imports Keras, so the check there is that loading and
# calling the SavedModel imports no Keras module beyond those.
LOADER = r"""
import json, sys
sys.modules["keras_attn_zoo"] = None  # any import of the package now fails
import tensorflow as tf
import tensorflow_text  # noqa: F401 (registers the SentencePiece ops)

def keras_modules():
    return {name for name in sys.modules if name == "keras" or name.startswith("keras.")}

request = json.loads(sys.stdin.read())
before = keras_modules()
report = {}
for name, directory in request["directories"].items():
    serve = tf.saved_model.load(directory).signatures["serving_default"]
    out = serve(text=tf.constant(request["texts"]))
    report[name] = {
        "inputs": {k: [v.dtype.name, v.shape.as_list()] for k, v in serve.structured_input_signature[1].items()},
        "outputs": {k: [v.dtype.name, v.shape.as_list()] for k, v in out.items()},
        "translation": [t.decode("utf-8") for t in out["translation"].numpy()],
        "score": out["score"].numpy().tolist(),
    }
report["new_keras_modules"] = sorted(keras_modules() - before)
report["package_imported"] = sys.modules.get("keras_attn_zoo") is not None
print("REPORT " + json.dumps(report))
"""


@pytest.fixture(scope="module")
def pairs():
    return read_pairs(FIXTURES / "bible_en_es_tiny.tsv", "en", "es")


@pytest.fixture(scope="module")
def model(pairs):
    keras.utils.set_random_seed(1234)
    sources, targets = pairs
    # Untrained: the outputs are long, varied strings of pieces (unk included), which exercises
    # detokenization and the length limits better than a barely trained model would. Untied: an
    # untrained tied embedding (rows of norm 1) dominates the logits, and every input would give
    # the same output.
    return translation(
        SubwordTokenizer.train(sources, vocab_size=100),
        SubwordTokenizer.train(targets, vocab_size=100),
        units=16,
        embedding_dim=8,
        max_source_length=12,
        max_target_length=20,
        tie_embeddings=False,
    )


@pytest.fixture(scope="module")
def texts(pairs):
    s = pairs[0]
    return [
        s[0],  # longer than max_source_length: truncated
        "",
        " \t\n ",
        "Dios 東",  # an unseen character: unk
        s[10],
        "\u00a0" + s[3] + "\u3000",  # outer whitespace that str.strip removes, ASCII or not
        s[20][:15],
    ]


@pytest.fixture(scope="module")
def served(model, texts, tmp_path_factory):
    """Exports greedy and beam search, then runs both in one fresh process; returns its report."""
    root = tmp_path_factory.mktemp("export")
    directories = {
        "greedy": str(export_saved_model(model, root / "greedy")),
        "beam": str(export_saved_model(model, root / "beam", beam_size=3, **BEAM_OPTIONS)),
    }
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", LOADER],
        input=json.dumps({"directories": directories, "texts": texts}),
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=300,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("REPORT ")]
    assert result.returncode == 0 and lines, result.stderr[-3000:]
    return json.loads(lines[-1][len("REPORT ") :])


def test_signature(served):
    for name in ("greedy", "beam"):
        assert served[name]["inputs"] == {"text": ["string", [None]]}
        assert served[name]["outputs"] == {"translation": ["string", [7]], "score": ["float32", [7]]}


def test_loads_without_the_package_or_more_keras(served):
    assert served["package_imported"] is False
    assert served["new_keras_modules"] == []


@pytest.mark.parametrize("name, beam_size, options", [("greedy", 1, {}), ("beam", 3, BEAM_OPTIONS)])
def test_outputs_equal_predict_texts(model, texts, served, name, beam_size, options):
    expected = model.predict_texts(texts, beam_size=beam_size, **options)
    assert served[name]["translation"] == [p.text for p in expected]
    assert served[name]["score"] == pytest.approx([p.score or 0.0 for p in expected], abs=1e-4)
    nonempty = [t for t, p in zip(served[name]["translation"], expected) if p.score is not None]
    assert len(nonempty) == 5 and all(nonempty) and len(set(nonempty)) == 5


def test_empty_and_whitespace_inputs_give_empty_output(served):
    for name in ("greedy", "beam"):
        assert served[name]["translation"][1:3] == ["", ""]
        assert served[name]["score"][1:3] == [0.0, 0.0]


def test_model_without_tokenizers_is_refused(tmp_path):
    bare = translation(source_vocab_size=20, target_vocab_size=20, units=4, embedding_dim=4)
    with pytest.raises(ValueError, match="without tokenizers"):
        export_saved_model(bare, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_options_and_occupied_directory_are_refused(model, tmp_path):
    with pytest.raises(ValueError, match="'beam_width'.*expected any of"):
        export_saved_model(model, tmp_path / "a", beam_width=4)
    with pytest.raises(ValueError, match="beam_size=0"):
        export_saved_model(model, tmp_path / "a", beam_size=0)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="holds other files"):
        export_saved_model(model, tmp_path / "b")
    assert (tmp_path / "b" / "notes.txt").read_text() == "keep me"
