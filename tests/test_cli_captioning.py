"""`attn-zoo evaluate` on a captioner: the same command as for text, the captioning metrics, and
localisation when the records carry the scenes' items. One tiny untrained captioner per module."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import keras_attn_zoo
from keras_attn_zoo import caption_evaluation
from keras_attn_zoo.cli import cli

CAPTIONS = ["a tee at the top left", "a bag on the right", "a coat at the bottom", "some trousers in the middle"]


@pytest.fixture(scope="module")
def captioner(tmp_path_factory):
    """(checkpoint folder, data file with items, data file without) for an untrained captioner."""
    from PIL import Image

    from keras_attn_zoo.checkpoint import save_checkpoint
    from keras_attn_zoo.recipes import captioning
    from keras_attn_zoo.tokenizer import SubwordTokenizer

    folder = tmp_path_factory.mktemp("captioner")
    tokenizer = SubwordTokenizer.train(CAPTIONS * 5, vocab_size=16, model_type="word")
    model = captioning(tokenizer, image_size=64, units=8, embedding_dim=8, attention_units=4, max_target_length=8)
    checkpoint = save_checkpoint(model, folder / "checkpoint", task="captioning", recipe="captioning")
    rng = np.random.default_rng(0)
    with_items, without = [], []
    for index, caption in enumerate(CAPTIONS):
        name = f"scene{index}.png"
        Image.fromarray(rng.integers(0, 255, (84, 84), dtype=np.uint8)).save(folder / name)
        record = {"image": name, "caption": caption, "split": "test"}
        without.append(record)
        with_items.append({**record, "items": [{"label": caption.split()[1], "row": index % 3, "column": 1, "word": 1}]})
    paths = []
    for name, records in (("scenes.jsonl", with_items), ("plain.jsonl", without)):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in records))
        paths.append(folder / name)
    return checkpoint, *paths


@pytest.fixture
def no_java(monkeypatch):
    monkeypatch.setattr(caption_evaluation, "java_available", lambda: False)


def evaluate(*args):
    result = CliRunner().invoke(cli, ["evaluate", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_evaluate_a_captioner_matches_the_python_api(captioner, no_java):
    checkpoint, scenes, _ = captioner
    args = [checkpoint, "--data", scenes, "--source", "image", "--target", "caption", "--split", "test", "--beam", "1"]
    report = json.loads(evaluate(*args, "--json"))
    model = keras_attn_zoo.from_pretrained(str(checkpoint))
    images = [str(scenes.parent / f"scene{i}.png") for i in range(len(CAPTIONS))]
    hypotheses = [p.text for p in model.predict_images(images, beam_size=1)]
    expected = caption_evaluation.caption_scores(hypotheses, [[c] for c in CAPTIONS], java=False)
    assert report["n"] == 4 and report["beam_size"] == 1
    for key in ("bleu1", "bleu4", "rougeL", "cider", "exact_match"):
        assert report[key] == expected[key], key
    assert report["meteor"] is None and expected["tokenizer"] == report["tokenizer"] == "simple"
    assert "localisation" in report and report["localisation_counts"]["images"] == 4
    lines = evaluate(*args).splitlines()
    assert lines[1].endswith("(split test, 4 examples)")
    assert [line.split()[0] for line in lines[3:10]] == ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr"]
    assert any(line.startswith("localisation %") for line in lines)


def test_evaluate_without_items_has_no_localisation(captioner, no_java):
    checkpoint, _, plain = captioner
    report = json.loads(evaluate(checkpoint, "--data", plain, "--source", "image", "--target", "caption",
                                 "--limit", "2", "--beam", "1", "--json"))
    assert report["n"] == 2 and "localisation" not in report and report["cider"] is not None
