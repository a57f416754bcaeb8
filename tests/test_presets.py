"""The preset registry (keras_attn_zoo/presets/*.toml) and the model cards generated from it."""

import json
import math
import re
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from keras_attn_zoo import model_card, presets
from keras_attn_zoo.errors import DataError, UnknownNameError

ROOT = Path(__file__).resolve().parents[1]
NAMES = presets.preset_names()
MEASURED = {
    "split": "test",
    "sentences": 817,
    "bleu_greedy": 10.25,
    "chrf_greedy": 35.5,
    "bleu_beam5": 11.75,
    "chrf_beam5": 36.0,
    "bleu_signature": "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0",
    "chrf_signature": "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0",
}


def front_matter(card):
    assert card.startswith("---\n"), card[:40]
    head, _, body = card[4:].partition("\n---\n")
    return yaml.safe_load(head), body


@pytest.fixture
def preset_copies(tmp_path, monkeypatch):
    """The registry read from a copy of the package's data, so tests can write to it."""
    package = tmp_path / "package"
    shutil.copytree(Path(presets.__file__).parent / presets.PRESETS_DIR, package / presets.PRESETS_DIR)
    monkeypatch.setattr(presets, "_package_files", lambda: package)
    return package


# --- The registry -----------------------------------------------------------------------------


def test_registry_lists_every_preset_file_sorted():
    files = sorted(p.stem for p in (Path(presets.__file__).parent / "presets").glob("*.toml"))
    assert NAMES == files and len(NAMES) >= 3
    assert [p["name"] for p in presets.list_presets()] == NAMES


def test_importing_the_package_and_reading_presets_loads_no_tensorflow():
    code = (
        "import sys, keras_attn_zoo, keras_attn_zoo.model_card as card\n"
        "names = [p['name'] for p in keras_attn_zoo.list_presets()]\n"
        "assert all(card.preset_card(n).startswith('---') for n in names)\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'tensorflow_text') if m in sys.modules)\n"
        "print(','.join(names), heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{','.join(NAMES)} []"


@pytest.mark.parametrize("name", NAMES)
def test_preset_data(name):
    preset = presets.get_preset(name)
    assert preset["name"] == name
    assert preset["task"] in presets.TASKS
    assert preset["license"] == "apache-2.0"
    assert preset["hub_repo"].count("/") == 1 and preset["hub_repo"].endswith("/" + name)
    assert isinstance(preset["data"]["license"], str) and preset["data"]["license"].strip()
    assert all(isinstance(v, (int, float, str, bool)) for v in preset.get("metrics", {}).values())


@pytest.mark.parametrize("name", NAMES)
def test_preset_recipe_file_exists_and_matches(name):
    from keras_attn_zoo.recipes import RECIPES
    from keras_attn_zoo.training import load_recipe_file

    preset = presets.get_preset(name)
    spec = load_recipe_file(ROOT / preset["recipe"])
    assert spec["name"] == name
    assert spec["recipe"].get("attention", "bahdanau") == preset["attention"]
    assert RECIPES[spec["recipe"].get("name", "translation")][0] == preset["task"]
    if preset["task"] == "translation":  # the columns of a translation file are language codes
        assert [spec["data"]["source"], spec["data"]["target"]] == [
            preset["data"]["source_language"],
            preset["data"]["target_language"],
        ]


@pytest.mark.parametrize("name", NAMES)
def test_bundled_checkpoint_is_declared_and_complete(name):
    from keras_attn_zoo.checkpoint import verify_checkpoint

    folder = presets.bundled_checkpoint(name)
    declared = presets.get_preset(name).get("checkpoint")
    if not declared:
        assert folder is None
        return
    assert folder is not None, f"preset {name} declares checkpoint {declared!r} but the package lacks it"
    config, metadata = verify_checkpoint(folder)
    assert metadata.get("name") == name and config["task"] == presets.get_preset(name)["task"]


def test_bundled_checkpoint_is_found_in_the_package_data(preset_copies):
    name = NAMES[0]
    path = preset_copies / "presets" / f"{name}.toml"
    text = re.sub(r'(?m)^checkpoint = .*\n', "", path.read_text(encoding="utf-8"))  # a bundled one, if any
    path.write_text(text.replace("\n[data]\n", '\ncheckpoint = "tiny"\n\n[data]\n', 1), encoding="utf-8")
    assert presets.get_preset(name)["checkpoint"] == "tiny"
    assert presets.bundled_checkpoint(name) is None  # declared, not shipped: from_pretrained uses the Hub
    (preset_copies / "checkpoints" / "tiny").mkdir(parents=True)
    assert presets.bundled_checkpoint(name) == preset_copies / "checkpoints" / "tiny"


def test_unknown_preset_names_the_closest():
    with pytest.raises(UnknownNameError) as error:
        presets.get_preset("bible_en_es_bahdanua")
    message = str(error.value)
    assert "\n" not in message and message.startswith("Unknown preset 'bible_en_es_bahdanua'.")
    assert "Did you mean 'bible_en_es_bahdanau'" in message
    assert isinstance(error.value, KeyError)
    with pytest.raises(UnknownNameError, match="Known: " + ", ".join(NAMES)):
        presets.get_preset("zzz")


def test_malformed_preset_file_is_a_data_error(preset_copies):
    path = preset_copies / "presets" / f"{NAMES[0]}.toml"
    path.write_text(path.read_text(encoding="utf-8").replace('task = "translation"', 'task = "poetry"'))
    with pytest.raises(DataError, match="Received: task='poetry'"):
        presets.get_preset(NAMES[0])
    path.write_text("name = [")
    with pytest.raises(DataError, match="not valid TOML"):
        presets.list_presets()


# --- Metrics ----------------------------------------------------------------------------------


def test_update_metrics_rewrites_only_the_metrics_table(preset_copies):
    name = NAMES[0]
    path = preset_copies / "presets" / f"{name}.toml"
    presets.update_metrics(name, {})  # start from the preset without measured metrics
    original_text = path.read_text(encoding="utf-8")
    original = presets.get_preset(name)
    assert "metrics" not in original

    updated = presets.update_metrics(name, dict(MEASURED, bleu_greedy=np.float64(10.25)))
    assert updated["metrics"] == MEASURED and type(updated["metrics"]["bleu_greedy"]) is float
    assert presets.get_preset(name) == dict(original, metrics=MEASURED)
    assert path.read_text(encoding="utf-8").startswith(original_text.rstrip("\n"))  # comments kept

    presets.update_metrics(name, {"bleu_greedy": 12.0, "extra": 1}, merge=True)
    assert presets.get_preset(name)["metrics"] == dict(MEASURED, bleu_greedy=12.0, extra=1)
    presets.update_metrics(name, {"bleu_greedy": 13.5})
    assert presets.get_preset(name)["metrics"] == {"bleu_greedy": 13.5}
    presets.update_metrics(name, {})
    assert path.read_text(encoding="utf-8") == original_text


@pytest.mark.parametrize(
    "metrics, match",
    [
        ({"bleu_greedy": math.nan}, "finite"),
        ({"bleu greedy": 1.0}, "bare TOML key"),
        ({"by_length": {"bleu": 1.0}}, "expected a number, a string or a boolean"),
        ({"n": [1, 2]}, "expected a number"),
    ],
)
def test_update_metrics_rejects_what_toml_cannot_hold(preset_copies, metrics, match):
    path = preset_copies / "presets" / f"{NAMES[0]}.toml"
    before = path.read_text(encoding="utf-8")
    with pytest.raises(ValueError, match=match):
        presets.update_metrics(NAMES[0], metrics)
    assert path.read_text(encoding="utf-8") == before


def test_update_metrics_of_unknown_preset():
    with pytest.raises(UnknownNameError, match="Did you mean 'bible_en_es_luong'"):
        presets.update_metrics("bible_en_es_luon", {"bleu_greedy": 1.0})


# --- Model cards ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_committed_card_equals_a_fresh_render(name):
    committed = ROOT / "model_cards" / f"{name}.md"
    assert committed.is_file(), "run: python -m keras_attn_zoo.model_card --write"
    assert committed.read_text(encoding="utf-8") == model_card.preset_card(name), (
        "model_cards/ is stale; run: python -m keras_attn_zoo.model_card --write"
    )
    bundled = presets.bundled_checkpoint(name)
    if bundled is not None:
        assert (bundled / "README.md").read_text(encoding="utf-8") == committed.read_text(encoding="utf-8")


def test_check_mode_reports_a_stale_card(tmp_path):
    assert model_card.main(["--write", "--dir", str(tmp_path)]) == 0
    assert sorted(p.stem for p in tmp_path.glob("*.md")) == NAMES
    assert model_card.main(["--check", "--dir", str(tmp_path)]) == 0
    (tmp_path / f"{NAMES[0]}.md").write_text("edited by hand\n")
    assert model_card.main(["--check", "--dir", str(tmp_path)]) == 1
    assert (tmp_path / f"{NAMES[0]}.md").read_text() == "edited by hand\n"


@pytest.mark.parametrize("name", NAMES)
def test_card_front_matter_matches_the_preset(name):
    preset = presets.get_preset(name)
    meta, body = front_matter(model_card.render_card(preset))
    assert meta["library_name"] == "keras"
    assert meta["pipeline_tag"] == model_card.PIPELINE_TAGS[preset["task"]]
    assert meta["license"] == preset["license"]
    languages = [preset["data"].get(key) for key in ("source_language", "target_language")]
    assert meta.get("language") == (list(dict.fromkeys(x for x in languages if x)) or None)
    assert meta["datasets"] == [preset["data"]["dataset"]]
    assert meta["tags"][:4] == ["keras", "keras-attn-zoo", "seq2seq", "rnn"]
    if preset["attention"] == "none":
        assert "attention" not in meta["tags"] and "no-attention" in meta["tags"]
    else:
        assert {"attention", preset["attention"].replace("_", "-")} <= set(meta["tags"])
    if not model_card.scores(preset.get("metrics")):
        assert "model-index" not in meta and "Not measured yet" in body
    assert f'keras_attn_zoo.from_pretrained("{name}")' in body
    assert f"attn-zoo predict {name} " in body
    for command in model_card.evaluation_commands(preset):
        assert f"{command}\n" in body
    if not model_card.scores(preset.get("metrics")):
        assert f"attn-zoo evaluate {name} --split test --beam 1\n" in body
        assert f"attn-zoo evaluate {name} --split test --beam 5\n" in body
    assert "## Limitations" in body and all(item in body for item in preset["limitations"])


def test_card_model_index_holds_exactly_the_measured_scores():
    preset = dict(presets.get_preset(NAMES[0]), metrics=MEASURED)
    meta, body = front_matter(model_card.render_card(preset))
    (entry,) = meta["model-index"]
    assert entry["name"] == preset["name"]
    (result,) = entry["results"]
    assert result["task"]["type"] == "translation"
    assert result["dataset"] == {"name": preset["data"]["dataset_name"], "type": "bible_en_es", "split": "test"}
    assert [(m["type"], m["name"], m["value"]) for m in result["metrics"]] == [
        ("sacrebleu", "BLEU (test, greedy)", 10.25),
        ("chrf", "chrF (test, greedy)", 35.5),
        ("sacrebleu", "BLEU (test, beam search, beam 5)", 11.75),
        ("chrf", "chrF (test, beam search, beam 5)", 36.0),
    ]
    assert "| greedy | 10.25 | 35.50 |" in body
    assert "| beam search, beam 5 | 11.75 | 36.00 |" in body
    assert "the test split (817 sentences)" in body and MEASURED["bleu_signature"] in body
    name = preset["name"]
    commands = f"attn-zoo evaluate {name} --split test --beam 1\nattn-zoo evaluate {name} --split test --beam 5"
    assert f"```bash\n{commands}\n```" in body
    assert "Not measured yet" not in body


def test_card_reads_split_prefixed_scores():
    metrics = {"test_bleu_greedy": 9.5, "test_chrf_beam4": 30.0, "test_examples": 817, "test_bleu_36plus_beam4": 4.5}
    preset = dict(presets.get_preset(NAMES[0]), metrics=metrics)
    meta, body = front_matter(model_card.render_card(preset))
    (result,) = meta["model-index"][0]["results"]
    assert result["dataset"]["split"] == "test"
    assert [(m["name"], m["value"]) for m in result["metrics"]] == [
        ("BLEU (test, greedy)", 9.5),
        ("chrF (test, beam search, beam 4)", 30.0),
    ]
    assert "| greedy | 9.50 |  |" in body and "| beam search, beam 4 |  | 30.00 |" in body
    assert "the test split (817 sentences)" in body
    assert "- `test_bleu_36plus_beam4`: 4.5" in body  # not a score the model-index knows: listed as is
    assert f"attn-zoo evaluate {preset['name']} --split test --beam 1\n" in body
    assert f"attn-zoo evaluate {preset['name']} --split test --beam 4\n" in body


def test_card_with_checkpoint_metadata():
    metadata = {
        "name": NAMES[0],
        "parameters": 1234567,
        "training_seconds": 3725.0,
        "best_epoch": 9,
        "dev_loss": 2.5,
        "hyperparameters": {"epochs": 40, "batch_size": 64, "time_budget_minutes": None},
        "files": {"model.weights.h5": "0" * 64},
    }
    _, body = front_matter(model_card.render_card(presets.get_preset(NAMES[0]), metadata))
    assert "| Parameters | 1,234,567 |" in body
    assert "| Training time to the best epoch | 1 h 02 min |" in body
    assert "| `batch_size` | 64 |" in body and "time_budget_minutes" not in body
    assert "No checkpoint was bundled" not in body and "0" * 64 not in body


def test_minimal_card_for_a_model_that_is_no_preset():
    minimal = {"name": "my-model", "task": "translation", "attention": "general", "hub_repo": "me/my-model"}
    card = model_card.render_card(minimal)
    meta, body = front_matter(card)
    assert meta == {
        "library_name": "keras",
        "pipeline_tag": "translation",
        "tags": ["keras", "keras-attn-zoo", "seq2seq", "rnn", "attention", "general"],
    }
    assert 'keras_attn_zoo.from_pretrained("hf://me/my-model")' in body


@pytest.mark.slow
def test_non_editable_install_finds_presets_and_checkpoints(tmp_path):
    """A wheel (not an editable install) ships the preset TOMLs; importlib.resources finds them."""
    source, wheel_dir, target = tmp_path / "source", tmp_path / "wheel", tmp_path / "site"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "keras_attn_zoo", source / "keras_attn_zoo", ignore=shutil.ignore_patterns("__pycache__"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheel_dir), source],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if build.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {build.stderr.strip().splitlines()[-1:]}")
    (wheel,) = wheel_dir.glob("*.whl")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)], check=True
    )
    code = (
        "import json, keras_attn_zoo, keras_attn_zoo.presets as p\n"
        "names = p.preset_names()\n"
        "print(json.dumps([keras_attn_zoo.__file__, names, [str(p.bundled_checkpoint(n)) for n in names]]))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(target))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    location, names, bundled = json.loads(result.stdout)
    assert location.startswith(str(target)) and names == NAMES
    for name, folder in zip(names, bundled):
        if presets.bundled_checkpoint(name) is not None:
            assert folder.startswith(str(target)), folder
