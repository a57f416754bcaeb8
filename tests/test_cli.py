"""The `attn-zoo` command line: in-process with click's CliRunner, plus a few real subprocesses.

One tiny untrained checkpoint (vocabulary ~100, 8 units) is built per module. Loading goes through
the real `keras_attn_zoo.from_pretrained` once per checkpoint folder; later commands reuse that
model (and its compiled search), which keeps the module fast on 2 CPU cores.
"""

import contextlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import keras_attn_zoo
from keras_attn_zoo.cli import cli

FIXTURES = Path(__file__).parent / "fixtures"
BIBLE = FIXTURES / "bible_en_es_tiny.tsv"
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
ATTN_ZOO = Path(sys.executable).with_name("attn-zoo")
INPUTS = ["In the beginning God created the heavens and the earth.", "", "God said, let there be light."]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A checkpoint folder of an untrained translation model whose tokenizers know the fixture."""
    from keras_attn_zoo.checkpoint import save_checkpoint
    from keras_attn_zoo.data import read_pairs
    from keras_attn_zoo.recipes import translation
    from keras_attn_zoo.tokenizer import SubwordTokenizer

    sources, targets = read_pairs(BIBLE, "en", "es", split="train")
    source_tokenizer = SubwordTokenizer.train(sources, vocab_size=100)
    target_tokenizer = SubwordTokenizer.train(targets, vocab_size=100)
    model = translation(
        source_tokenizer, target_tokenizer, units=8, embedding_dim=8, max_source_length=24, max_target_length=12
    )
    return save_checkpoint(model, tmp_path_factory.mktemp("cli") / "tiny")


@pytest.fixture
def never_loaded(monkeypatch):
    """Loading any model fails the test: the command must stop before that."""

    def from_pretrained(reference, **kwargs):
        raise AssertionError(f"the model {reference} was loaded")

    monkeypatch.setattr(keras_attn_zoo, "from_pretrained", from_pretrained)


def invoke(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


def one_error_line(result, code=1):
    """The result failed with `code` and said so in exactly one `error:` line, with no traceback."""
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == ""
    return lines[0]


def output_lines(result):
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("\n") or result.stdout == ""
    return result.stdout.split("\n")[:-1]


def expected_texts(checkpoint, cached, texts):
    model = keras_attn_zoo.from_pretrained(str(checkpoint))
    return [p.text for p in model.predict_texts(texts)]


# -- predict -------------------------------------------------------------------------------------


def test_predict_arguments_match_the_python_api(checkpoint, cached):
    texts = [INPUTS[0], INPUTS[2]]
    lines = output_lines(invoke("predict", checkpoint, *texts))
    assert lines == expected_texts(checkpoint, cached, texts)


def test_predict_and_evaluate_with_and_without_xla_agree(checkpoint, cached, monkeypatch):
    from keras_attn_zoo.models.seq2seq import Seq2Seq

    expected = expected_texts(checkpoint, cached, INPUTS)
    generate, seen = Seq2Seq.generate, []

    def recording(self, *args, **kwargs):
        seen.append(kwargs["jit_compile"])
        return generate(self, *args, **kwargs)

    monkeypatch.setattr(Seq2Seq, "generate", recording)
    for flag, jit in (("--xla", True), ("--no-xla", False), ("--beam=1", "auto")):
        seen.clear()
        assert output_lines(invoke("predict", checkpoint, *INPUTS, flag)) == expected, flag
        assert seen and set(seen) == {jit}, flag
    args = ["evaluate", checkpoint, "--data", BIBLE, "--source", "en", "--target", "es", "--limit", "5", "--json"]
    reports = [json.loads(invoke(*args, flag).stdout) for flag in ("--xla", "--no-xla")]
    assert reports[0]["bleu"] == reports[1]["bleu"] and reports[0]["chrf"] == reports[1]["chrf"]


def test_predict_file_and_stdin_keep_one_line_per_input(checkpoint, cached, tmp_path):
    expected = expected_texts(checkpoint, cached, INPUTS)
    assert expected[1] == ""
    data = ("\n".join(INPUTS) + "\n").encode("utf-8")
    path = tmp_path / "inputs.txt"
    path.write_bytes(data)
    assert output_lines(invoke("predict", checkpoint, "--file", path)) == expected
    assert output_lines(invoke("predict", checkpoint, "-", input=data)) == expected
    # CRLF line ends and no final newline read the same lines.
    crlf = data.rstrip(b"\n").replace(b"\n", b"\r\n")
    assert output_lines(invoke("predict", checkpoint, "-", input=crlf)) == expected


def test_predict_json_lines_with_attention(checkpoint, cached):
    result = invoke("predict", checkpoint, "-", "--json", "--attention", "--beam", "2", input="\n".join(INPUTS))
    records = [json.loads(line) for line in output_lines(result)]
    assert [r["input"] for r in records] == INPUTS
    assert records[1] == {
        "input": "", "output": "", "score": None, "truncated": False, "truncated_output": False,
        "source_tokens": [], "output_tokens": [], "attention": [],
    }  # fmt: skip
    for record in records[::2]:
        assert isinstance(record["score"], float)
        weights = record["attention"]
        assert len(weights) == len(record["output_tokens"]) >= 1
        assert all(len(row) == len(record["source_tokens"]) for row in weights)
        assert all(abs(sum(row) - 1.0) < 1e-3 for row in weights)
    plain = [json.loads(line) for line in output_lines(invoke("predict", checkpoint, INPUTS[0], "--json"))]
    assert set(plain[0]) == {"input", "output", "score", "truncated", "truncated_output"}


def test_predict_plot_attention_writes_pngs(checkpoint, cached, tmp_path):
    output_lines(invoke("predict", checkpoint, INPUTS[0], "--plot-attention", tmp_path / "one.png"))
    assert (tmp_path / "one.png").read_bytes().startswith(PNG_MAGIC)
    output_lines(invoke("predict", checkpoint, *INPUTS, "--plot-attention", tmp_path / "many.png"))
    assert sorted(p.name for p in tmp_path.glob("many*")) == ["many-1.png", "many-3.png"]  # input 2 is empty
    assert (tmp_path / "many-3.png").read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize("kind", ["parent is a file", "is a folder"])
def test_plot_path_is_checked_before_translating(checkpoint, never_loaded, tmp_path, kind):
    (tmp_path / "notes.txt").write_text("a file")
    path = tmp_path / "notes.txt" / "attn.png" if kind == "parent is a file" else tmp_path
    line = one_error_line(invoke("predict", checkpoint, INPUTS[0], "--plot-attention", path))
    expected = f"whose parent {str(tmp_path / 'notes.txt')!r} is a file" if kind == "parent is a file" else "a folder;"
    assert expected in line and "expected a .png path" in line


def test_plot_path_in_folders_still_to_create_is_fine(checkpoint, cached, tmp_path):
    output_lines(invoke("predict", checkpoint, INPUTS[0], "--plot-attention", tmp_path / "a" / "b" / "one.png"))
    assert (tmp_path / "a" / "b" / "one.png").read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize(
    "module, command",
    [
        ("matplotlib", ["predict", "MODEL", "x", "--plot-attention", "out.png"]),
        ("sacrebleu", ["evaluate", "MODEL", "--data", BIBLE, "--source", "en", "--target", "es"]),
    ],
)
def test_missing_optional_package_is_named_before_any_work(checkpoint, never_loaded, monkeypatch, module, command):
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    line = one_error_line(invoke(*[checkpoint if a == "MODEL" else a for a in command]))
    assert f"which is not installed; install it with: pip install {module}" in line


def test_train_names_sentencepiece_before_importing_tensorflow(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sentencepiece", None)
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(f'name = "tiny"\n[recipe]\nunits = 8\n[data]\npath = "{BIBLE.as_posix()}"\nsource = "en"\ntarget = "es"\n')
    line = one_error_line(invoke("train", recipe, "--run-dir", tmp_path / "run"))
    assert line == (
        "error: attn-zoo train (to train the tokenizers) needs `sentencepiece`, which is not installed; "
        "install it with: pip install sentencepiece"
    )


def test_predict_truncation_warning_is_one_line(checkpoint, cached):
    long_text = " ".join([INPUTS[0]] * 6)  # far more than max_source_length=24 pieces
    result = CliRunner().invoke(cli, ["predict", str(checkpoint), long_text, INPUTS[0]])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 2
    assert result.stderr.splitlines() == [
        "warning: 1 input(s) longer than the model's maximum of 24 subword pieces were truncated."
    ]


def test_predict_invalid_utf8(checkpoint, cached, tmp_path):
    data = "first line\nsegunda línea\n".encode("utf-8") + b"caf\xe9\n"
    line = one_error_line(invoke("predict", checkpoint, "-", input=data))
    assert "stdin:3" in line and "0xe9" in line and "--errors replace" in line
    path = tmp_path / "latin1.txt"
    path.write_bytes(data)
    assert f"{path}:3" in one_error_line(invoke("predict", checkpoint, "--file", path))

    result = invoke("predict", checkpoint, "-", "--errors", "replace", "--json", input=data)
    records = [json.loads(line) for line in output_lines(result)]
    assert [r["input"] for r in records] == ["first line", "segunda línea", "caf\ufffd"]


def test_predict_missing_file(checkpoint, tmp_path):
    line = one_error_line(invoke("predict", checkpoint, "--file", tmp_path / "nope.txt"))
    assert "nope.txt" in line and "No such file" in line


def test_predict_usage_errors_exit_2(checkpoint):
    for args in (
        ["predict", checkpoint, "x", "--bogus"],
        ["predict", checkpoint, "x", "--beam", "0"],
        ["predict", checkpoint],  # no input
        ["predict", checkpoint, "a", "-"],  # '-' must be alone
        ["predict", checkpoint, "x", "--attention"],  # needs --json
        ["predict", checkpoint, "x", "--errors", "ignore"],
        ["frobnicate"],
    ):
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output


def test_unknown_preset_lists_close_names():
    line = one_error_line(invoke("predict", "bible_en_es_bahdanu", "hello"))
    assert "bible_en_es_bahdanu" in line and "bible_en_es_bahdanau" in line


def test_corrupted_checkpoint(checkpoint, tmp_path):
    broken = shutil.copytree(checkpoint, tmp_path / "broken")
    weights = broken / "model.weights.h5"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    line = one_error_line(invoke("predict", broken, "hello"))
    assert "model.weights.h5" in line and "corrupt" in line
    debug = invoke("--debug", "predict", broken, "hello")
    assert debug.exit_code == 1 and "Traceback" in debug.stderr and "CheckpointError" in debug.stderr


def test_input_kind_without_reader(checkpoint, cached, monkeypatch):
    model = keras_attn_zoo.from_pretrained(str(checkpoint))
    monkeypatch.setattr(model, "input_kind", "audio", raising=False)
    line = one_error_line(invoke("predict", checkpoint, "speech.wav"))
    assert "'audio'" in line and "expected one of 'text', 'image'" in line


def test_unexpected_error_and_interrupt(monkeypatch):
    def boom(reference):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(keras_attn_zoo, "from_pretrained", boom)
    line = one_error_line(invoke("predict", "anything", "hello"))
    assert line == "error: RuntimeError: boom (run with --debug for the traceback)"

    def interrupt(reference):
        raise KeyboardInterrupt

    monkeypatch.setattr(keras_attn_zoo, "from_pretrained", interrupt)
    result = invoke("predict", "anything", "hello")
    assert result.exit_code == 130 and result.output == ""


# -- list ----------------------------------------------------------------------------------------


def test_list_shows_the_presets():
    from keras_attn_zoo.presets import list_presets

    names = [p["name"] for p in list_presets()]
    assert len(names) >= 5  # three translators, two summarizers
    lines = output_lines(invoke("list"))
    assert lines[0].split()[:3] == ["NAME", "TASK", "ATTENTION"]
    assert [line.split()[0] for line in lines[1:]] == names
    rows = json.loads(invoke("list", "--json").stdout)
    assert [row["name"] for row in rows] == names
    assert set(rows[0]) == {"name", "task", "attention", "checkpoint_bytes", "headline_metric", "test_score_beam5"}
    headline = {row["task"]: row["headline_metric"] for row in rows}
    assert headline == {"translation": "BLEU", "summarization": "ROUGE-L", "captioning": "CIDEr"}


def test_list_headline_metric_and_size(monkeypatch, checkpoint):
    from keras_attn_zoo import presets

    metrics = {"split": "test", "bleu_beam5": 12.345}
    preset = {"name": "p", "task": "translation", "attention": "bahdanau", "metrics": metrics}
    monkeypatch.setattr(presets, "list_presets", lambda: [preset, {**preset, "name": "q", "metrics": {}}])
    monkeypatch.setattr(presets, "bundled_checkpoint", lambda name: checkpoint if name == "p" else None)
    lines = output_lines(invoke("list"))
    assert lines[1].split()[-3:] in (["KB", "BLEU", "12.35"], ["MB", "BLEU", "12.35"])
    assert lines[2].split()[-3:] == ["-", "not", "measured"]
    size = sum(f.stat().st_size for f in Path(checkpoint).rglob("*") if f.is_file())
    assert json.loads(invoke("list", "--json").stdout)[0]["checkpoint_bytes"] == size


# -- evaluate ------------------------------------------------------------------------------------


def test_evaluate_a_data_file(checkpoint, cached):
    args = ["evaluate", checkpoint, "--data", BIBLE, "--source", "en", "--target", "es", "--split", "test"]
    report = json.loads(invoke(*args, "--limit", "3", "--beam", "2", "--json").stdout)
    assert report["n"] == 3 and report["split"] == "test" and report["beam_size"] == 2
    assert report["bleu_signature"].startswith("nrefs:1|") and 0 <= report["chrf"] <= 100
    assert [b["bucket"] for b in report["by_length"]] == ["<=15", "16-25", "26-35", "36+"]
    text = output_lines(invoke(*args, "--limit", "3", "--beam", "2"))
    assert text[3].startswith("BLEU") and "nrefs:1|" in text[3] and text[4].startswith("chrF")
    assert invoke("evaluate", checkpoint, "--data", BIBLE).exit_code == 2  # no --source, --target


def test_evaluate_a_preset_uses_its_recipe(checkpoint, cached, loaded):
    from keras_attn_zoo.presets import list_presets
    from keras_attn_zoo.training import load_recipe_file

    preset = list_presets()[0]
    spec = load_recipe_file(Path(__file__).parents[1] / preset["recipe"])
    data = spec["data"]
    if not Path(data["path"]).is_file():
        pytest.skip(f"the recipe's data file {data['path']} is not on this machine")
    loaded[preset["name"]] = keras_attn_zoo.from_pretrained(str(checkpoint))  # stands in for its weights
    report = json.loads(invoke("evaluate", preset["name"], "--limit", "2", "--json").stdout)
    assert Path(report["data"]) == Path(data["path"]) and report["split"] == data.get("test_split", "test")
    assert report["n"] == 2


def test_predict_evaluate_and_export_default_to_the_models_search(checkpoint, cached, monkeypatch, tmp_path):
    # The model's search_defaults (a preset's [evaluation]) are every command's defaults; a flag
    # overrides one option and keeps the others.
    from keras_attn_zoo import export

    model = keras_attn_zoo.from_pretrained(str(checkpoint))
    monkeypatch.setattr(model, "search_defaults", {"beam_size": 2, "alpha": 0.7})

    def searched(*args):
        model._search_functions.clear()
        output_lines(invoke(*args))
        return [dict(key[0]) for key in model._search_functions]

    (options,) = searched("predict", checkpoint, "In the beginning")
    assert options["beam_size"] == 2 and options["alpha"] == 0.7
    (options,) = searched("predict", checkpoint, "In the beginning", "--alpha", "0.2")
    assert options["beam_size"] == 2 and options["alpha"] == 0.2
    (options,) = searched("evaluate", checkpoint, "--data", BIBLE, "--source", "en", "--target", "es", "--limit", "2")
    assert options["beam_size"] == 2 and options["alpha"] == 0.7
    report = json.loads(invoke("evaluate", checkpoint, "--data", BIBLE, "--source", "en", "--target", "es",
                               "--limit", "2", "--beam", "1", "--json").stdout)
    assert report["beam_size"] == 1 and report["alpha"] == 0.7
    calls = []
    monkeypatch.setattr(export, "export_saved_model", lambda m, d, **k: calls.append(m.search_options(**k)) or d)
    output_lines(invoke("export", checkpoint, tmp_path / "served"))
    assert calls[0]["beam_size"] == 2 and calls[0]["alpha"] == 0.7


@pytest.mark.parametrize("beam", ["1", "2"])
def test_predict_json_marks_outputs_cut_at_the_length_limit(checkpoint, cached, beam):
    # --max-length 1 leaves room for the (forced) eos alone: the output is cut, not finished.
    result = invoke("predict", checkpoint, "In the beginning", "--json", "--max-length", "1", "--beam", beam)
    (line,) = output_lines(result)
    record = json.loads(line)
    assert record["output"] == "" and record["truncated_output"] is True


def test_evaluate_progress_moves_per_batch(checkpoint, cached, monkeypatch):
    from keras_attn_zoo import cli as cli_module

    updates = []
    real = cli_module._progress

    def recording(length, label, file=None):
        bar = real(length, label, file)
        recorder = bar.__enter__()
        original = recorder.update
        recorder.update = lambda steps: updates.append(steps) or original(steps)
        return _Entered(bar, recorder)

    monkeypatch.setattr(cli_module, "_progress", recording)
    args = ["evaluate", checkpoint, "--data", BIBLE, "--source", "en", "--target", "es"]
    report = json.loads(invoke(*args, "--limit", "5", "--batch-size", "2", "--beam", "1", "--json").stdout)
    assert report["n"] == 5 and updates == [2, 2, 1]


class _Entered:
    """A context manager that was already entered: returns `value`, exits `manager` at the end."""

    def __init__(self, manager, value):
        self.manager, self.value = manager, value

    def __enter__(self):
        return self.value

    def __exit__(self, *exc):
        return self.manager.__exit__(*exc)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_warnings_are_written_above_the_progress_bar():
    from keras_attn_zoo import cli as cli_module

    screen = _Terminal()
    with cli_module._quiet_logging(debug=False), cli_module._progress(4, "Translating 4 inputs", file=screen) as bar:
        bar.update(2)
        logging.getLogger("keras_attn_zoo").warning("2 input(s) were truncated.")
        bar.update(2)
    text = screen.getvalue()
    # each line as a terminal shows it: what follows the last carriage return
    lines = [line.rsplit("\r", 1)[-1].replace("\x1b[K", "") for line in text.split("\n")]
    assert lines == [
        "warning: 2 input(s) were truncated.",
        "Translating 4 inputs  [" + "#" * 30 + "]  4/4",
        "",
    ]
    assert "\r\x1b[Kwarning: 2 input(s) were truncated.\n" in text  # the bar's line is cleared first


def test_evaluate_a_preset_in_a_fresh_clone_says_how_to_get_its_data(never_loaded, tmp_path, monkeypatch):
    """A clone without ../shared: the recipe's data is missing; one line says how to build it."""
    from keras_attn_zoo import cli as cli_module

    clone = tmp_path / "clone"
    (clone / "recipes").mkdir(parents=True)
    recipe = Path(__file__).parents[1] / "recipes" / "bible_en_es_bahdanau.toml"
    shutil.copy(recipe, clone / "recipes")
    monkeypatch.setattr(cli_module, "_PACKAGE_DIR", str(clone / "keras_attn_zoo"))
    monkeypatch.chdir(clone)
    line = one_error_line(invoke("evaluate", "bible_en_es_bahdanau", "--split", "test"))
    assert line == (
        f"error: Data file {str(clone / 'recipes' / '../../shared/data/bible_en_es.tsv.gz')!r} of recipe "
        f"{str(clone / 'recipes' / 'bible_en_es_bahdanau.toml')!r} does not exist; build it with: "
        f"cd {clone / 'recipes'} && python build_bible_data.py --out ../../shared/data --langs es"
    )


# -- pull, push, export, train -------------------------------------------------------------------


def test_pull_downloads_into_the_cache(checkpoint, hub_repo_id, hub_cache):
    from keras_attn_zoo.hub import upload_folder

    sha = upload_folder(checkpoint, hub_repo_id)
    result = invoke("pull", f"hf://{hub_repo_id}@{sha}")
    (folder,) = output_lines(result)
    assert Path(folder).is_relative_to(hub_cache)
    assert (Path(folder) / "model.weights.h5").read_bytes() == (checkpoint / "model.weights.h5").read_bytes()
    assert "not found" in one_error_line(invoke("pull", "hf://test-org/does-not-exist"))


def test_push_then_pull(checkpoint, cached, hub_repo_id, hub_cache):
    (uri,) = output_lines(invoke("push", checkpoint, f"hf://{hub_repo_id}", "--branch", "v1", "-m", "tiny"))
    assert uri.startswith(f"hf://{hub_repo_id}@") and len(uri.rsplit("@", 1)[1]) == 40
    (folder,) = output_lines(invoke("pull", uri))
    for name in ("config.json", "assets/source.spm.model", "assets/target.spm.model"):
        assert (Path(folder) / name).read_bytes() == (checkpoint / name).read_bytes()


def push_env(tmp_path, endpoint, timeout):
    return dict(ENV, HF_ENDPOINT=endpoint, ATTN_ZOO_UPLOAD_TIMEOUT=str(timeout), TMPDIR=str(tmp_path))


def staging_left(tmp_path):
    return sorted(p.name for p in tmp_path.glob("attn-zoo-push-*"))


def test_push_to_a_hub_that_never_answers_fails_in_one_line(checkpoint, silent_hub, tmp_path):
    result = subprocess.run(
        [sys.executable, ATTN_ZOO, "push", checkpoint, "hf://test-org/silent"],
        capture_output=True,
        env=push_env(tmp_path, silent_hub.endpoint, 0.3),
        timeout=300,
    )
    assert result.returncode == 1 and result.stdout == b""
    *retries, line = result.stderr.decode().strip().splitlines()
    assert len(retries) == 2  # progress notes on the way: "The push to ... failed (ReadTimeout ...); trying again"
    assert all(r.startswith("The push to 'test-org/silent'") and "trying again" in r for r in retries)
    assert line.startswith("error: Cannot push to 'test-org/silent'") and "ReadTimeout" in line
    assert "tried 3 times" in line and silent_hub.connections == 3
    assert staging_left(tmp_path) == []


def test_push_killed_with_sigterm_removes_its_staging_folder(checkpoint, silent_hub, tmp_path):
    import signal
    import time

    process = subprocess.Popen(
        [sys.executable, ATTN_ZOO, "push", checkpoint, "hf://test-org/silent"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=push_env(tmp_path, silent_hub.endpoint, 600),
    )
    try:
        while silent_hub.connections == 0 and process.poll() is None:  # saved, now waiting on the Hub
            time.sleep(0.1)
        assert staging_left(tmp_path) != []
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 128 + signal.SIGTERM
    finally:
        process.kill()
        process.communicate()
    assert staging_left(tmp_path) == []


def test_export_calls_export_saved_model(checkpoint, cached, monkeypatch, tmp_path):
    from keras_attn_zoo import export

    calls = []
    monkeypatch.setattr(export, "export_saved_model", lambda *a, **k: calls.append((a, k)) or Path(a[1]))
    (line,) = output_lines(invoke("export", checkpoint, tmp_path / "served", "--beam", "3"))
    assert line == str(tmp_path / "served")
    (model, directory), options = calls[0]
    assert model is keras_attn_zoo.from_pretrained(str(checkpoint)) and options["beam_size"] == 3


def tiny_recipe(folder):
    recipe = Path(folder) / "tiny.toml"
    recipe.write_text(
        f'name = "tiny"\n[recipe]\nname = "translation"\nunits = 8\nembedding_dim = 8\n'
        f'[data]\npath = "{BIBLE.as_posix()}"\nsource = "en"\ntarget = "es"\n'
        f"[tokenizer]\nvocab_size = 100\n[training]\nepochs = 1\nbatch_size = 16\n"
    )
    return recipe


def test_train_calls_training_with_a_progress_bar(monkeypatch, tmp_path):
    from keras_attn_zoo import training

    recipe = tiny_recipe(tmp_path)
    calls = []
    monkeypatch.setattr(training, "train", lambda *a, **k: calls.append((a, k)) or tmp_path / "run" / "checkpoint")
    (line,) = output_lines(invoke("train", recipe, "--run-dir", tmp_path / "run", "--distribute", "mirrored"))
    assert line == str(tmp_path / "run" / "checkpoint")
    assert calls == [((str(recipe),), {"run_dir": str(tmp_path / "run"), "distribute": "mirrored", "verbose": 1})]
    invoke("train", recipe)
    assert calls[1][1] == {"run_dir": None, "distribute": None, "verbose": 1}
    assert invoke("train", recipe, "--distribute", "tpu").exit_code == 2


def test_train_typo_in_the_recipe_is_one_line(tmp_path):
    recipe = tiny_recipe(tmp_path)
    recipe.write_text(recipe.read_text().replace("units = 8", "unitz = 8"))
    line = one_error_line(invoke("train", recipe, "--run-dir", tmp_path / "run"))
    assert line.endswith("[recipe] has unknown key 'unitz'. Did you mean 'units'?")


def test_finished_train_answers_before_importing_tensorflow(tmp_path):
    recipe = tiny_recipe(tmp_path)
    run_dir = tmp_path / "run"
    (run_dir / "checkpoint").mkdir(parents=True)
    epoch = {"best_val_loss": 2.0, "best_epoch": 1, "wait": 0, "seconds": 1.0, "epochs": 1}
    done = {**epoch, "stopped": "all 1 epochs done"}
    (run_dir / "state.json").write_text(json.dumps({**done, "by_epoch": {"1": done}}))
    result = run("train", recipe, "--run-dir", run_dir)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert result.stdout.decode() == f"{run_dir / 'checkpoint'}\n"
    assert result.stderr.decode() == f"{run_dir} already finished (all 1 epochs done); nothing to train.\n"
    # `-X importtime` cannot see inside a command (its file descriptor 2 is silenced): list sys.modules
    code = (
        "import json, sys\nfrom keras_attn_zoo.cli import cli\n"
        f"cli(['train', {str(recipe)!r}, '--run-dir', {str(run_dir)!r}], standalone_mode=False)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'jax')"
        " or m == 'keras_attn_zoo.recipe_file')))\n"
    )
    listed = subprocess.run([sys.executable, "-c", code], capture_output=True, env=ENV, timeout=300, text=True)
    assert json.loads(listed.stdout.strip().splitlines()[-1]) == ["keras_attn_zoo.recipe_file"]


@pytest.mark.slow
def test_train_a_tiny_recipe(tmp_path):
    recipe = tiny_recipe(tmp_path)
    result = invoke("train", recipe, "--run-dir", tmp_path / "run")
    assert output_lines(result)[-1] == str(tmp_path / "run" / "checkpoint")
    assert (tmp_path / "run" / "checkpoint" / "model.weights.h5").is_file()


# -- the real console script ---------------------------------------------------------------------


def run(*args, input=None, python_flags=()):
    """Run the installed `attn-zoo` console script (with the Python flags given) in a subprocess."""
    return subprocess.run(
        [sys.executable, *python_flags, ATTN_ZOO, *map(str, args)],
        input=input,
        capture_output=True,
        env=ENV,
        timeout=300,
        check=False,
    )


def imported_modules(stderr):
    """Module names from `python -X importtime` lines: 'import time: self | cumulative | name'."""
    return {line.rsplit("|", 1)[1].strip() for line in stderr.decode().splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("args", [["--help"], ["list"]])
def test_help_and_list_import_neither_tensorflow_nor_keras(args):
    result = run(*args, python_flags=["-X", "importtime"])
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    modules = imported_modules(result.stderr)
    assert "keras_attn_zoo.cli" in modules and "click" in modules
    heavy = sorted(m for m in modules if m.split(".")[0] in ("tensorflow", "keras", "jax", "torch"))
    assert heavy == []
    assert (b"Commands:" if args == ["--help"] else b"bible_en_es_bahdanau") in result.stdout


def test_console_script_predict_from_stdin_is_quiet(checkpoint):
    result = run("predict", checkpoint, "-", input=("\n".join(INPUTS) + "\n").encode())
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == ""
    assert result.stderr == b""  # no TensorFlow or absl lines
    version = run("--version")
    assert version.stdout.decode().strip() == f"attn-zoo {keras_attn_zoo.__version__}"
