"""Recipe files: every key of every table checked, the data file's origin, a finished run's state.

`keras_attn_zoo.recipe_file` imports neither TensorFlow nor Keras; these tests need neither.
"""

import inspect
import json
import textwrap
from pathlib import Path

import pytest

from keras_attn_zoo.errors import DataError
from keras_attn_zoo.recipe_file import TABLE_KEYS, data_file, finished_run, load_recipe_file, stop_reason
from keras_attn_zoo.recipes.registry import RECIPE_OPTIONS

ROOT = Path(__file__).resolve().parents[1]
TINY = Path(__file__).parent / "fixtures" / "bible_en_es_tiny.tsv"

RECIPE = f"""\
name = "tiny"
seed = 3

[recipe]
name = "translation"
attention = "bahdanau"
units = 16

[data]
path = "{TINY.as_posix()}"
source = "en"
target = "es"
test_split = "test"

[tokenizer]
vocab_size = 100

[training]
learning_rate = 0.001

[evaluation]
beam_size = 5

[output]
dir = "runs/tiny"
"""


def write(tmp_path, text):
    path = tmp_path / "recipe.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_the_example_recipe_loads(tmp_path):
    spec = load_recipe_file(write(tmp_path, RECIPE))
    assert spec["recipe"]["units"] == 16 and spec["training"]["learning_rate"] == 0.001


@pytest.mark.parametrize(
    "good, typo, table, closest",
    [
        ("seed = 3", "seeds = 3", None, "seed"),
        ("units = 16", "unitz = 16", "recipe", "units"),
        ("test_split =", "test_spilt =", "data", "test_split"),
        ("vocab_size = 100", "vocab_sise = 100", "tokenizer", "vocab_size"),
        ("learning_rate =", "learning_rat =", "training", "learning_rate"),
        ("beam_size = 5", "beam_szie = 5", "evaluation", "beam_size"),
        ('dir = "runs', 'dirr = "runs', "output", "dir"),
    ],
)
def test_a_typo_in_any_table_names_the_closest_key(tmp_path, good, typo, table, closest):
    recipe = write(tmp_path, RECIPE.replace(good, typo))
    with pytest.raises(DataError) as error:
        load_recipe_file(recipe)
    message = str(error.value)
    wrong = typo.split(" ")[0]
    where = f"[{table}] has unknown key" if table else "unknown key"
    assert "\n" not in message and f"{where} {wrong!r}. Did you mean {closest!r}" in message


def test_a_table_that_nothing_reads_is_an_error(tmp_path):
    with pytest.raises(DataError, match=r"unknown key 'card'"):
        load_recipe_file(write(tmp_path, RECIPE + '[card]\nlicense = "mit"\n'))


def test_evaluation_keys_are_the_search_options():
    from keras_attn_zoo.models.seq2seq import SEARCH_DEFAULTS
    from keras_attn_zoo.recipe_file import SEARCH_OPTIONS

    assert set(SEARCH_OPTIONS) == set(SEARCH_DEFAULTS)


@pytest.mark.parametrize("recipe", sorted(RECIPE_OPTIONS))
def test_recipe_options_are_what_the_builder_takes(recipe):
    """RECIPE_OPTIONS is plain data (no Keras import to check a file); it must match the code."""
    from keras_attn_zoo.models.captioner import Captioner
    from keras_attn_zoo.models.seq2seq import Seq2Seq
    from keras_attn_zoo.recipes import get_recipe

    builder = set(inspect.signature(get_recipe(recipe)).parameters)
    model_class = Captioner if recipe == "captioning" else Seq2Seq
    model = set(inspect.signature(model_class.__init__).parameters)
    from_tokenizers = {"tokenizer", "source_tokenizer", "target_tokenizer", "vocab_size", "source_vocab_size", "target_vocab_size"}
    # The recipes derive placement from `attention` and refuse it; search_defaults come from [evaluation];
    # the captioning recipe reads the grid's size and channels off the encoder it builds.
    set_by_recipe = {"search_defaults", "feature_channels", "feature_grid"}
    if recipe != "captioning":  # a captioner's placement is its own option (Xu et al.'s by default)
        set_by_recipe.add("placement")
    if recipe == "translation":  # copying and shared embeddings need one vocabulary: summarization's
        set_by_recipe |= {"copy", "share_embeddings"}
    expected = (builder | model) - from_tokenizers - set_by_recipe - {"self", "kwargs", "model_options"}
    assert set(RECIPE_OPTIONS[recipe]) == expected


@pytest.mark.parametrize("name", ["bible_en_es_bahdanau", "bible_en_es_luong", "bible_en_es_seq2seq"])
def test_repository_recipes_pass(name):
    spec = load_recipe_file(ROOT / "recipes" / f"{name}.toml")
    assert set(spec["data"]) <= set(TABLE_KEYS["data"]) and spec["data"]["build"].startswith("python build_bible_data.py")


def test_missing_data_says_how_to_build_it(tmp_path):
    recipe = write(tmp_path, RECIPE.replace(TINY.as_posix(), "../shared/data/pairs.tsv.gz").replace(
        'test_split = "test"', 'test_split = "test"\nbuild = "python make_pairs.py --out ../shared/data"'
    ))
    with pytest.raises(DataError) as error:
        data_file(load_recipe_file(recipe))
    assert str(error.value) == (
        f"Data file {str(tmp_path / '../shared/data/pairs.tsv.gz')!r} of recipe {str(recipe)!r} does not exist; "
        f"build it with: cd {tmp_path} && python make_pairs.py --out ../shared/data"
    )


def test_finished_run(tmp_path):
    spec = load_recipe_file(write(tmp_path, RECIPE.replace("[training]\n", "[training]\nepochs = 2\n")))
    run = tmp_path / "run"
    assert finished_run(spec, run) is None
    (run / "checkpoint").mkdir(parents=True)
    epoch = {"best_val_loss": 2.0, "best_epoch": 1, "wait": 0, "seconds": 1.0, "epochs": 2}
    state = {**epoch, "stopped": "all 2 epochs done", "by_epoch": {"1": {**epoch, "epochs": 1, "stopped": None},
                                                                     "2": {**epoch, "stopped": "all 2 epochs done"}}}
    (run / "state.json").write_text(json.dumps(state))
    (run / "backup").mkdir()
    (run / "backup" / "training_metadata.json").write_text(json.dumps({"epoch": 2}))
    assert finished_run(spec, run) == (run / "checkpoint", "all 2 epochs done")
    # killed after state.json said "stopped" but before the backup of that epoch: not finished
    (run / "backup" / "training_metadata.json").write_text(json.dumps({"epoch": 1}))
    assert finished_run(spec, run) is None


def test_a_run_stopped_by_a_limit_the_recipe_raised_is_not_finished(tmp_path):
    recipe = write(tmp_path, RECIPE)
    run = tmp_path / "run"
    (run / "checkpoint").mkdir(parents=True)
    epoch = {"best_val_loss": 2.0, "best_epoch": 1, "wait": 0, "seconds": 90.0, "epochs": 1}
    state = {**epoch, "stopped": "time budget of 1 min reached after epoch 1"}
    (run / "state.json").write_text(json.dumps(state))
    training = "[training]\nepochs = 5\n"
    recipe.write_text(recipe.read_text().replace("[training]\n", training + "time_budget_minutes = 1\n"))
    assert finished_run(load_recipe_file(recipe), run) == (run / "checkpoint", "time budget of 1 min reached after epoch 1")
    recipe.write_text(recipe.read_text().replace("time_budget_minutes = 1\n", "time_budget_minutes = 2\n"))
    assert finished_run(load_recipe_file(recipe), run) is None


@pytest.mark.parametrize(
    "state, limits, reason",
    [
        ({"epochs": 0}, {}, None),
        ({"epochs": 3, "wait": 2}, {"patience": 2}, "early stopping after epoch 3"),
        ({"epochs": 3, "wait": 2}, {"patience": 3}, None),
        ({"epochs": 3, "seconds": 120.0}, {"time_budget_minutes": 2}, "time budget of 2 min reached after epoch 3"),
        ({"epochs": 3, "seconds": 119.0}, {"time_budget_minutes": 2}, None),
        ({"epochs": 3, "seconds": 1e9}, {"time_budget_minutes": None}, None),
        ({"epochs": 4}, {"epochs": 4}, "all 4 epochs done"),
        ({"epochs": 4}, {"epochs": 6}, None),
    ],
)
def test_stop_reason_reads_the_limits_of_the_recipe(state, limits, reason):
    hp = {"epochs": 10, "patience": 3, "time_budget_minutes": None} | limits
    assert stop_reason({"wait": 0, "seconds": 0.0} | state, hp) == reason
