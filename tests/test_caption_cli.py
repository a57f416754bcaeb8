"""`attn-zoo predict` on a captioner: image paths, folders and stdin in, one caption line per image out.

One tiny untrained captioner checkpoint (64-px images, 16 units) per module, loaded once through the
real `from_pretrained` (see tests/test_cli.py's `cached`); one real subprocess checks the console
script end to end.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import keras_attn_zoo
from keras_attn_zoo.cli import cli

from conftest import tiny_captioner_checkpoint

ATTN_ZOO = Path(sys.executable).with_name("attn-zoo")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_captioner_checkpoint(tmp_path_factory.mktemp("cli") / "captioner")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A folder of three pictures (named out of order) plus a text file, and bad files beside it."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for name, shape in (("b.png", (40, 60, 3)), ("a.jpg", (50, 30, 3)), ("c.gif", (20, 20, 3))):
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    bad = tmp_path_factory.mktemp("bad")
    (bad / "empty.png").write_bytes(b"")
    (bad / "text.png").write_text("hello")
    return folder, bad


def invoke(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


def lines_of(text):
    assert text.endswith("\n") or text == ""
    return text.split("\n")[:-1]


def expected(checkpoint, paths):
    model = keras_attn_zoo.from_pretrained(str(checkpoint))
    return [p.text for p in model.predict_images([str(p) for p in paths])]


def test_one_caption_per_image_in_input_order(checkpoint, cached, photos):
    folder, _ = photos
    paths = [folder / "c.gif", folder / "a.jpg", folder / "b.png"]
    result = invoke("predict", checkpoint, *paths)
    assert result.exit_code == 0 and result.stderr == "", result.output
    captions = expected(checkpoint, paths)
    assert lines_of(result.stdout) == captions
    assert any(captions)  # the model says something (else the test would compare empty lines)


def test_a_folder_is_its_images_sorted_by_name_and_stdin_reads_paths(checkpoint, cached, photos):
    folder, _ = photos
    in_order = [folder / "a.jpg", folder / "b.png", folder / "c.gif"]  # notes.txt is not an image
    captions = expected(checkpoint, in_order)
    records = [json.loads(line) for line in lines_of(invoke("predict", checkpoint, folder, "--json").stdout)]
    assert [r["input"] for r in records] == [str(p) for p in in_order]
    assert [r["output"] for r in records] == captions
    listing = "\n".join(str(p) for p in in_order) + "\n\n"  # a blank line is skipped
    assert lines_of(invoke("predict", checkpoint, "-", input=listing).stdout) == captions


def test_bad_images_give_one_error_line_each_and_exit_1_after_the_rest(checkpoint, cached, photos):
    folder, bad = photos
    paths = [folder / "a.jpg", bad / "empty.png", bad / "missing.png", folder / "b.png", bad / "text.png"]
    result = invoke("predict", checkpoint, *paths)
    assert result.exit_code == 1
    captions = expected(checkpoint, [folder / "a.jpg", folder / "b.png"])
    assert lines_of(result.stdout) == [captions[0], "", "", captions[1], ""]
    errors = lines_of(result.stderr)
    assert len(errors) == 3 and all(line.startswith("error: ") for line in errors)
    assert "empty.png: empty file" in errors[0] and "missing.png: no such file" in errors[1]
    assert "text.png: not an image" in errors[2] and "Traceback" not in result.stderr

    records = [json.loads(line) for line in lines_of(invoke("predict", checkpoint, *paths, "--json").stdout)]
    assert [("error" in r) for r in records] == [False, True, True, False, True]
    assert records[1]["output"] == "" and records[1]["score"] is None and records[1]["input"] == str(paths[1])
    assert isinstance(records[0]["score"], float)

    debug = invoke("--debug", "predict", checkpoint, *paths)
    assert debug.exit_code == 1 and "Traceback" not in debug.stderr  # a bad image is not a crash


def test_json_attention_has_the_grid_and_one_row_per_word(checkpoint, cached, photos):
    folder, bad = photos
    result = invoke("predict", checkpoint, folder / "b.png", bad / "empty.png", "--json", "--attention")
    good, failed = (json.loads(line) for line in lines_of(result.stdout))
    assert good["grid"] == [2, 2] and "source_tokens" not in good
    assert len(good["attention"]) == len(good["output_tokens"]) >= 1
    assert all(len(row) == 4 and abs(sum(row) - 1.0) < 1e-3 for row in good["attention"])
    box = good["image_box"]
    assert (box["original_height"], box["original_width"]) == (40, 60) and box["width"] == 64
    assert failed["attention"] == [] and failed["output_tokens"] == [] and "error" in failed
    plain = json.loads(lines_of(invoke("predict", checkpoint, folder / "b.png", "--json").stdout)[0])
    assert set(plain) == {"input", "output", "score", "truncated", "truncated_output"}


def test_plot_attention_writes_one_figure_per_image(checkpoint, cached, photos, tmp_path):
    folder, bad = photos
    result = invoke("predict", checkpoint, folder / "a.jpg", "--plot-attention", tmp_path / "one.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "one.png").read_bytes().startswith(PNG_MAGIC)
    result = invoke("predict", checkpoint, folder / "a.jpg", bad / "empty.png", folder / "b.png",
                    "--plot-attention", tmp_path / "many.png")
    assert result.exit_code == 1
    assert sorted(p.name for p in tmp_path.glob("many*")) == ["many-1.png", "many-3.png"]  # image 2 is bad


def test_an_empty_folder_is_one_error_line(checkpoint, cached, tmp_path):
    result = invoke("predict", checkpoint, tmp_path)
    assert result.exit_code == 1 and result.stdout == ""
    (line,) = lines_of(result.stderr)
    assert line.startswith("error: ") and "holds no image file" in line


def test_console_script_captions_a_folder_quietly(checkpoint, photos):
    folder, bad = photos
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, ATTN_ZOO, "predict", str(checkpoint), str(folder), str(bad / "empty.png")],
        capture_output=True, env=env, timeout=300, check=False,
    )
    assert result.returncode == 1
    lines = result.stdout.decode().split("\n")
    assert len(lines) == 5 and lines[3] == "" and lines[4] == ""
    assert result.stderr.decode().splitlines() == [f"error: {bad / 'empty.png'}: empty file; expected an image (PNG, JPEG, GIF, ...)"]
