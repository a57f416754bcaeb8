"""The summarization slice end to end on a tiny Debian fixture: recipe, training with a shared
vocabulary and a prefix column, the coverage fine-tune (`init_from`), predictions with copy
details, `attn-zoo evaluate` with the task's metrics, and bad input."""

import json
import logging
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from keras_attn_zoo.checkpoint import load_checkpoint
from keras_attn_zoo.cli import cli
from keras_attn_zoo.recipes import summarization
from keras_attn_zoo.training import train

TINY = Path(__file__).parent / "fixtures" / "debian_tiny.tsv"


def write_recipe(folder, name, copy=True, coverage=False, **training):
    training = {"epochs": 1, "batch_size": 8, "patience": 5, "max_source_length": 48, "max_target_length": 16,
                "bucket_by": "source"} | training
    lines = "\n".join(f"{key} = {json.dumps(value)}" for key, value in training.items())
    path = Path(folder) / f"{name}.toml"
    path.write_text(
        textwrap.dedent(
            f"""\
            name = "{name}"
            seed = 7

            [recipe]
            name = "summarization"
            copy = {json.dumps(copy)}
            coverage = {json.dumps(coverage)}
            units = 16
            embedding_dim = 8
            dropout = 0.0

            [data]
            path = "{TINY.as_posix()}"
            source = "description"
            prefix = "package"
            target = "synopsis"

            [tokenizer]
            shared = true
            vocab_size = 200

            [training]
            """
        )
        + lines
        + "\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A copy run, then its coverage fine-tune (what debian_summarizer_pointer does)."""
    folder = tmp_path_factory.mktemp("summarization")
    copy_run = folder / "copy"
    train(write_recipe(folder, "tiny_copy"), run_dir=copy_run, verbose=0)
    pointer_run = folder / "pointer"
    recipe = write_recipe(folder, "tiny_pointer", coverage=True, init_from=str(copy_run))
    train(recipe, run_dir=pointer_run, verbose=0)
    return copy_run, pointer_run


def test_one_shared_vocabulary_and_tied_embeddings(runs):
    copy_run, _ = runs
    tokenizers = copy_run / "tokenizers"
    assert (tokenizers / "source.spm.model").read_bytes() == (tokenizers / "target.spm.model").read_bytes()
    model = load_checkpoint(copy_run / "checkpoint")
    assert model.copy and not model.coverage and model.share_embeddings and model.tie_embeddings
    assert model.source_embedding is model.target_embedding
    assert model.zoo_task == "summarization"


def test_the_fine_tune_starts_from_the_copy_run(runs):
    copy_run, pointer_run = runs
    init = json.loads((pointer_run / "init_from.json").read_text())
    assert init["fresh_variables"] == ["decoder/attention/coverage_kernel"]
    assert init["name"] == "tiny_copy"
    assert (pointer_run / "tokenizers" / "source.spm.model").read_bytes() == (
        copy_run / "checkpoint" / "assets" / "source.spm.model"
    ).read_bytes()
    pointer = load_checkpoint(pointer_run / "checkpoint")
    assert pointer.coverage and pointer.coverage_loss_weight == 1.0
    assert pointer.zoo_metadata["init_from"]["fresh_variables"] == init["fresh_variables"]
    header = (pointer_run / "log.csv").read_text().splitlines()[0]
    assert "coverage_loss" in header.split(",")
    # Every variable but the new one started from the copy run: one epoch moved them, but the
    # copied ones cannot all be fresh initial values (compare with a new model's initial values).
    copy_model = load_checkpoint(copy_run / "checkpoint")
    fresh = summarization(copy_model.source_tokenizer, units=16, embedding_dim=8, dropout=0.0)
    before = {v.path: np.asarray(v.numpy()) for v in copy_model.weights}
    start = {v.path: np.asarray(v.numpy()) for v in fresh.weights}
    after = {v.path: np.asarray(v.numpy()) for v in pointer.weights}
    shared = [p for p in before if p in after]
    closer_to_copy = sum(np.abs(after[p] - before[p]).mean() < np.abs(after[p] - start[p]).mean() for p in shared)
    assert closer_to_copy == len(shared)


def test_init_from_needs_a_checkpoint(tmp_path):
    from keras_attn_zoo.errors import DataError

    recipe = write_recipe(tmp_path, "tiny_bad", coverage=True, init_from=str(tmp_path / "nothing"))
    with pytest.raises(DataError, match="not a checkpoint with tokenizers"):
        train(recipe, run_dir=tmp_path / "run", verbose=0)


def test_predictions_carry_p_gen_and_copy_positions(runs):
    model = load_checkpoint(runs[1] / "checkpoint")
    text = "acpitail: acpitail shows ACPI status information about battery, fan and temperature."
    (prediction,) = model.predict_texts([text], beam_size=2, min_length=3, return_details=True)
    copy = prediction.details["copy"]
    assert len(copy) == len(prediction.token_ids) >= 3
    source_ids = model.source_tokenizer.encode([text])[0]
    for item, token_id in zip(copy, prediction.token_ids):
        assert 0.0 < item["p_gen"] < 1.0
        if token_id in source_ids:
            assert source_ids[item["source_position"]] == token_id
        else:
            assert item["source_position"] is None
    assert prediction.to_dict()["copy"] == copy
    (plain,) = model.predict_texts([text], beam_size=2, min_length=3)
    assert plain.details == {} and "copy" not in plain.to_dict()


def test_cli_predict_json_and_evaluate(runs):
    checkpoint = str(runs[1] / "checkpoint")
    runner = CliRunner()
    result = runner.invoke(cli, ["predict", checkpoint, "foo: a tool for bar files", "", "--json"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert len(records) == 2 and "copy" in records[0] and records[1]["output"] == ""
    result = runner.invoke(
        cli, ["evaluate", checkpoint, "--data", str(TINY), "--source", "description", "--target", "synopsis",
              "--split", "test", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    assert {"rouge1", "rouge2", "rougeL", "novel_2grams", "repeated_trigrams", "mean_length"} <= set(report)
    assert report["n"] == 8
    result = runner.invoke(
        cli, ["evaluate", checkpoint, "--data", str(TINY), "--source", "description", "--target", "synopsis",
              "--split", "test"]
    )
    assert result.exit_code == 0 and "ROUGE-L F1" in result.output and "BLEU" not in result.output


def test_empty_and_huge_documents(runs, caplog):
    model = load_checkpoint(runs[0] / "checkpoint")
    huge = "acpitail: " + " ".join(["battery fan temperature"] * 33_334)  # 100,003 words
    with caplog.at_level(logging.WARNING, logger="keras_attn_zoo"):
        empty, blank, long = model.predict_texts(["", "   \n ", huge], beam_size=2)
    assert empty.text == "" and blank.text == "" and empty.score is None
    assert long.truncated and isinstance(long.text, str)
    warnings = [r for r in caplog.records if "truncated" in r.getMessage()]
    assert len(warnings) == 1 and "1 input(s)" in warnings[0].getMessage()


def test_summarization_recipe_checks_its_vocabulary():
    from keras_attn_zoo.tokenizer import SubwordTokenizer

    with pytest.raises(ValueError, match="attention="):
        summarization(vocab_size=30, attention="none")
    with pytest.raises(ValueError, match="placement"):
        summarization(vocab_size=30, placement="luong")
    texts = [f"word{i} thing{i % 7} other{i % 3}" for i in range(200)]
    one = SubwordTokenizer.train(texts, vocab_size=30)
    two = SubwordTokenizer.train([t.upper() for t in texts], vocab_size=30)
    with pytest.raises(ValueError, match="shared = true"):
        summarization(one, two, units=8, embedding_dim=4)
    plain = summarization(one, units=8, embedding_dim=4, copy=False, coverage=False)
    assert plain.copy_layer is None and plain.coverage_loss_weight == 0.0 and plain.source_tokenizer is one


def test_push_and_pull_through_the_hub(runs, hub, hub_cache, hub_repo_id):
    from keras_attn_zoo import from_pretrained
    from keras_attn_zoo.hub import upload_folder

    checkpoint = runs[1] / "checkpoint"
    upload_folder(checkpoint, hub_repo_id)
    pulled = from_pretrained(f"hf://{hub_repo_id}")
    local = load_checkpoint(checkpoint)
    assert pulled.copy and pulled.coverage and pulled.zoo_task == "summarization"
    text = ["foo-doc: documentation for the foo tool, which reads bar files."]
    a, b = (m.predict_texts(text, beam_size=2, min_length=2, return_details=True)[0] for m in (pulled, local))
    assert (a.text, a.token_ids, a.details) == (b.text, b.token_ids, b.details)


def test_training_reports_how_many_inputs_it_truncates(runs, caplog):
    from keras_attn_zoo.tokenizer import SubwordTokenizer
    from keras_attn_zoo.training import _report_truncation

    tokenizer = SubwordTokenizer.load(runs[0] / "tokenizers" / "source.spm.model")
    texts = ["short text", " ".join(["battery"] * 60), " ".join(["fan"] * 60)]
    with caplog.at_level(logging.WARNING, logger="keras_attn_zoo"):
        assert _report_truncation(tokenizer, texts, 48, "training inputs") == 2
        assert _report_truncation(tokenizer, texts[:1], 48, "training inputs") == 0
    (record,) = caplog.records
    assert "2 of 3 training inputs are longer than max_source_length=48" in record.getMessage()
