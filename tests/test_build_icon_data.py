"""recipes/build_icon_data.py on a tiny fake emoji package and openclipart tree written here."""

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SCRIPT = Path(__file__).resolve().parent.parent / "recipes" / "build_icon_data.py"
spec = importlib.util.spec_from_file_location("build_icon_data", SCRIPT)
icons = importlib.util.module_from_spec(spec)
spec.loader.exec_module(icons)
IMAGES = Path(__file__).parent / "fixtures" / "images"

SVG = """<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:cc="http://creativecommons.org/ns#" xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <metadata><rdf:RDF><cc:Work rdf:about="">
    <dc:title>{title}</dc:title>
    <dc:creator><cc:Agent><dc:title>{creator}</dc:title></cc:Agent></dc:creator>
  </cc:Work></rdf:RDF></metadata>
  <rect width="10" height="10"/>
</svg>"""


@pytest.mark.parametrize("title, expected", [
    ("  Red   apple ", ("Red apple", None)),
    ("gramastar", (None, "one word")),
    ("Clipart by Gerald_G", (None, "names clip art")),
    ("Part of the Flat Icon Collection (Wed Nov 17)", (None, "names a collection")),
    ("Lemon SVG theme", (None, "names a theme")),
    ("Drawing by somebody", (None, "names an author")),
    ("chemistry_flask_01", (None, "file-name-like")),
    ("bird drawing.svg", (None, "file-name-like")),
    ("New document 1", (None, "file-name-like")),
    ("", (None, "no title")),
    (None, (None, "no title")),
])
def test_clean_title(title, expected):
    assert icons.clean_title(title) == expected


def test_titles_used_by_more_than_three_images_are_frequent():
    pairs = [("a", "Stop sign"), ("b", "stop sign"), ("c", "Stop Sign"), ("d", "STOP SIGN"), ("e", "Red apple"),
             ("e", "Yield sign"), ("e", "Yield sign"), ("f", "Yield sign"), ("g", "Yield sign")]
    # four distinct images share "stop sign" (case-folded); "yield sign" has only three distinct images
    assert icons.frequent_titles(pairs) == {"stop sign"}


def test_svg_title_is_the_works_not_the_creators(tmp_path):
    path = tmp_path / "a.svg"
    path.write_text(SVG.format(title="Baby penguin", creator="Jane Doe"))
    assert icons.svg_title(path) == "Baby penguin"
    path.write_text(SVG.format(title="Jane  Doe", creator="jane doe"))
    assert icons.svg_title(path) is None  # the title only repeats the creator's name
    path.write_text("<svg><unclosed></svg>")
    assert icons.svg_title(path) is None


def test_emoji_names_from_emoji_test_with_fallback(tmp_path):
    test_file = tmp_path / "emoji-test.txt"
    test_file.write_text(
        "# group: People & Body\n"
        "1F44B                                                  ; fully-qualified     # 👋 E0.6 waving hand\n"
        "1F44B 1F3FB                                            ; fully-qualified     # 👋🏻 E1.0 waving hand: light skin tone\n"
        "263A                                                   ; unqualified         # ☺ E0.6 smiling face\n"
        "1F1EA 1F1F8                                            ; fully-qualified     # 🇪🇸 E2.0 flag: Spain\n",
        encoding="utf-8")
    names = icons.read_emoji_test(test_file)
    assert names == {"1F44B": "waving hand", "1F44B-1F3FB": "waving hand: light skin tone",
                     "1F1EA-1F1F8": "flag: Spain"}
    assert icons.emoji_caption(names["1F1EA-1F1F8"]) == "flag Spain"


def test_skin_tones_of_one_emoji_share_a_split():
    assert icons.split_of("emoji:1F44B") in ("train", "dev", "test")
    splits = [icons.split_of(f"clipart:{i:016x}") for i in range(2000)]
    shares = {name: splits.count(name) / len(splits) for name in ("train", "dev", "test")}
    assert abs(shares["test"] - 0.10) < 0.03 and abs(shares["dev"] - 0.05) < 0.02


@pytest.fixture
def sources(tmp_path):
    package = tmp_path / "package"
    (package / "img" / "google" / "64").mkdir(parents=True)
    entries = [
        {"unified": "1F44B", "image": "1f44b.png", "name": "WAVING HAND SIGN", "has_img_google": True,
         "skin_variations": {"1F3FB": {"unified": "1F44B-1F3FB", "image": "1f44b-1f3fb.png", "has_img_google": True}}},
        {"unified": "1FAE9", "image": "1fae9.png", "name": "FACE WITH BAGS UNDER EYES", "has_img_google": True},
        {"unified": "1F600", "image": "1f600.png", "name": "GRINNING FACE", "has_img_google": False},
    ]
    (package / "emoji.json").write_text(json.dumps(entries))
    for name, colour in (("1f44b.png", (255, 200, 0, 255)), ("1f44b-1f3fb.png", (250, 220, 180, 255)),
                         ("1fae9.png", (0, 0, 0, 0))):
        Image.new("RGBA", (8, 8), colour).save(package / "img" / "google" / "64" / name)
    emoji_test = tmp_path / "emoji-test.txt"
    emoji_test.write_text("1F44B 1F3FB ; fully-qualified # 👋🏻 E1.0 waving hand: light skin tone\n"
                          "1F44B ; fully-qualified # 👋 E0.6 waving hand\n", encoding="utf-8")

    clipart = tmp_path / "openclipart"
    for folder in ("png/animals", "png/signs", "svg/animals", "svg/signs"):
        (clipart / folder).mkdir(parents=True)
    shutil.copy(IMAGES / "rgba.png", clipart / "png/animals/red_square_01.png")  # transparent black + red
    (clipart / "svg/animals/red_square_01.svg").write_text(SVG.format(title="Red square", creator="A"))
    (clipart / "png/signs/red_square_01.png").symlink_to("../animals/red_square_01.png")
    (clipart / "svg/signs/red_square_01.svg").symlink_to("../animals/red_square_01.svg")
    shutil.copy(IMAGES / "huge.png", clipart / "png/signs/huge_poster.png")
    (clipart / "svg/signs/huge_poster.svg").write_text(SVG.format(title="Huge poster", creator="B"))
    for index in range(4):  # four different images titled alike: all dropped
        Image.new("L", (4, 4), 10 * index).save(clipart / f"png/signs/stop_{index}.png")
        (clipart / f"svg/signs/stop_{index}.svg").write_text(SVG.format(title="Stop sign", creator="C"))
    Image.new("L", (4, 4), 99).save(clipart / "png/signs/flag_01.png")
    (clipart / "svg/signs/flag_01.svg").write_text(SVG.format(title="flag", creator="D"))
    return package, emoji_test, clipart


def test_build_captions_composites_and_splits_by_image(sources, tmp_path):
    package, emoji_test, clipart = sources
    out = tmp_path / "out"
    records, skipped = icons.build(out, package, emoji_test, clipart)
    by_caption = {r["caption"]: r for r in records}
    assert sorted(by_caption) == ["Red square", "face with bags under eyes", "waving hand",
                                  "waving hand light skin tone"]
    assert all(r["source"] == "openclipart" for r in records if r["caption"] == "Red square")
    assert len([r for r in records if r["caption"] == "Red square"]) == 1  # the symlinked copy counts once
    # transparent black becomes white, the opaque red stays red
    square = np.asarray(Image.open(out / by_caption["Red square"]["image"]))
    assert square.shape == (8, 8, 3) and (square[7, 7] == 255).all() and square[3, 3].tolist() == [255, 0, 0]
    fully_transparent = np.asarray(Image.open(out / by_caption["face with bags under eyes"]["image"]))
    assert (fully_transparent == 255).all()
    # both skin tones of one emoji on the same side of the split
    assert by_caption["waving hand"]["split"] == by_caption["waving hand light skin tone"]["split"]
    assert by_caption["waving hand"]["split"] == icons.split_of("emoji:1F44B")
    reasons = "\n".join(skipped)
    assert "huge_poster.png: more than max_pixels" in reasons
    assert reasons.count("used by more than 3 images") == 4 and "flag_01.png: one word" in reasons
    lines = (out / "captions.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["caption"] for line in lines] == [r["caption"] for r in records]
    assert (out / "skipped.txt").read_text().count("\n") == len(skipped)
