import gzip
import shutil
import warnings
from pathlib import Path

import pytest

from keras_attn_zoo.caption_data import Captions, read_captions
from keras_attn_zoo.errors import DataError

CAPTIONS = Path(__file__).parent / "fixtures" / "captions"
IMAGES = CAPTIONS / "images"
RED, GREEN, BLUE = IMAGES / "red.png", IMAGES / "green.png", IMAGES / "blue.png"


def _raises_one_line(match, *args, **kwargs):
    with pytest.raises(DataError, match=match) as info:
        read_captions(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


def _read_quietly(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean file gives no warning
        return read_captions(*args, **kwargs)


# --------------------------------------------------------------------------------------------
# Formats: each groups captions by image, in file order.


def test_flickr8k_groups_captions_by_image_and_strips_them():
    captions = _read_quietly(CAPTIONS / "flickr8k_captions.txt", images_dir=IMAGES)
    assert isinstance(captions, Captions)
    assert captions.items == [
        (RED, ["A red square.", "A small red tile."]),
        (GREEN, ["A green square."]),
        (BLUE, ["A blue square.", "Blue, like the sea."]),
    ]
    assert list(captions) == captions.items and len(captions) == 3 and captions[1][0] == GREEN
    assert captions.skipped == []


def test_flickr8k_split_file_keeps_the_images_it_lists(tmp_path):
    train = _read_quietly(CAPTIONS / "flickr8k_captions.txt", images_dir=IMAGES,
                          split_file=CAPTIONS / "flickr8k_train.txt")
    assert [image for image, _ in train] == [RED, BLUE]
    extra = tmp_path / "split.txt"
    extra.write_text("green.png\nnot_captioned.png\n", encoding="utf-8")
    with pytest.warns(UserWarning, match=r"skipped 1 image"):
        dev = read_captions(CAPTIONS / "flickr8k_captions.txt", images_dir=IMAGES, split_file=extra)
    assert dev.items == [(GREEN, ["A green square."])]
    assert [str(s) for s in dev.skipped] == [
        f"{extra}: line(s) 2: 1 listed image(s) with no caption in {CAPTIONS / 'flickr8k_captions.txt'}"
    ]
    none = tmp_path / "none.txt"
    none.write_text("x.png\n", encoding="utf-8")
    _raises_one_line(r"none\.txt: none of its 1 image name\(s\) has a caption .* \(e\.g\. 'red\.png'\)",
                     CAPTIONS / "flickr8k_captions.txt", images_dir=IMAGES, split_file=none)


def test_coco_json_maps_annotations_to_file_names():
    captions = _read_quietly(CAPTIONS / "coco_captions.json", images_dir=IMAGES)
    # Images in the order their first annotation appears; image 4 has no annotation.
    assert captions.items == [
        (BLUE, ["A blue square.", "Blue, like the sea."]),
        (RED, ["A red square."]),
        (GREEN, ["A green square."]),
    ]


def test_csv_resolves_paths_against_its_folder_and_filters_splits():
    everything = _read_quietly(CAPTIONS / "captions.csv")
    assert everything.items == [
        (RED, ["A red square.", "A red tile, small."]),
        (GREEN, ["A green square."]),
        (BLUE, ["A blue square."]),
    ]
    assert _read_quietly(CAPTIONS / "captions.csv", split="dev").items == [(GREEN, ["A green square."])]
    assert [i for i, _ in _read_quietly(CAPTIONS / "captions.csv", split="train")] == [RED]
    by_index = _read_quietly(CAPTIONS / "captions.csv", image_column=0, caption_column=1)
    assert by_index.items == everything.items


def test_gzipped_tsv_and_images_dir(tmp_path):
    tsv = tmp_path / "caps.tsv"
    tsv.write_text("file\ttext\nred.png\tA red square.\nblue.png\tA blue square.\n", encoding="utf-8")
    gz = tmp_path / "caps.tsv.gz"
    with open(tsv, "rb") as f, gzip.open(gz, "wb") as out:
        shutil.copyfileobj(f, out)
    captions = _read_quietly(gz, images_dir=IMAGES, image_column="file", caption_column="text")
    assert captions.items == [(RED, ["A red square."]), (BLUE, ["A blue square."])]
    # Absolute paths are used as they are.
    absolute = tmp_path / "abs.jsonl"
    absolute.write_text(f'{{"image": "{GREEN.resolve()}", "caption": "Green."}}\n', encoding="utf-8")
    assert _read_quietly(absolute).items == [(GREEN.resolve(), ["Green."])]


def test_explicit_format_overrides_the_name(tmp_path):
    kaggle = tmp_path / "captions.txt"  # Kaggle's Flickr8k: a CSV named .txt
    kaggle.write_text("image,caption\nred.png,A red square.\n", encoding="utf-8")
    _raises_one_line(r"captions\.txt: 2 malformed row\(s\) at line\(s\) 1, 2; expected image\.jpg#0<TAB>caption "
                     r"\(for a file with a header row, pass format='csv'", kaggle, images_dir=IMAGES)
    assert _read_quietly(kaggle, images_dir=IMAGES, format="csv").items == [(RED, ["A red square."])]
    with pytest.raises(ValueError, match=r"Received: format='xml'; expected one of 'flickr8k', 'coco'"):
        read_captions(kaggle, format="xml")


# --------------------------------------------------------------------------------------------
# Bad items: skipped, each reported with the file and line; the others are still returned.


def test_empty_captions_and_missing_images_are_skipped_with_their_lines():
    path = CAPTIONS / "captions_bad_items.jsonl"
    with pytest.warns(UserWarning, match=r"captions_bad_items\.jsonl: skipped 2 image\(s\) or caption\(s\); "
                                         r"the first: .*line\(s\) 3: empty caption"):
        captions = read_captions(path)
    # broken.png exists, so without check_images it is kept.
    assert captions.items == [
        (RED, ["A red square.", "Red again."]),
        (GREEN, ["A green square.", "Green."]),
        (IMAGES / "broken.png", ["A picture cut short."]),
    ]
    assert [str(s) for s in captions.skipped] == [
        f"{path}: line(s) 3: empty caption",
        f"{path}: line(s) 4: {IMAGES / 'absent.png'}: no such file",
    ]
    assert [s.image for s in captions.skipped] == [BLUE, IMAGES / "absent.png"]


def test_check_images_skips_images_that_do_not_decode_one_line_each():
    path = CAPTIONS / "captions_bad_items.jsonl"
    with pytest.warns(UserWarning, match=r"skipped 3 image"):
        captions = read_captions(path, check_images=True)
    assert [image for image, _ in captions] == [RED, GREEN]
    broken = captions.skipped[-1]
    assert broken.image == IMAGES / "broken.png"
    assert str(broken).startswith(f"{path}: line(s) 5: {IMAGES / 'broken.png'}: not an image Pillow can read")
    assert all("\n" not in str(s) for s in captions.skipped)


def test_an_image_listed_on_several_lines_reports_them_all(tmp_path):
    path = tmp_path / "caps.csv"
    path.write_text("image,caption\nred.png,A.\nabsent.png,B.\nred.png,C.\nabsent.png,D.\n", encoding="utf-8")
    with pytest.warns(UserWarning):
        captions = read_captions(path, images_dir=IMAGES)
    assert captions.items == [(RED, ["A.", "C."])]
    assert str(captions.skipped[0]) == f"{path}: line(s) 3, 5: {IMAGES / 'absent.png'}: no such file"


def test_no_image_left_is_an_error_that_says_where_images_were_looked_for(tmp_path):
    _raises_one_line(
        r"flickr8k_captions\.txt: no image left with a non-empty caption; the first: .*line\(s\) 1, 2: .*red\.png: "
        r"no such file \(images resolved against .*captions; pass images_dir=",
        CAPTIONS / "flickr8k_captions.txt",
    )
    _raises_one_line(r"nowhere: no such folder", CAPTIONS / "flickr8k_captions.txt", images_dir=tmp_path / "nowhere")


# --------------------------------------------------------------------------------------------
# Errors: one line naming the file and the lines.


def test_malformed_flickr8k_lines_are_listed():
    _raises_one_line(r"flickr8k_malformed\.txt: 2 malformed row\(s\) at line\(s\) 2, 4; expected image\.jpg#0<TAB>",
                     CAPTIONS / "flickr8k_malformed.txt", images_dir=IMAGES)


def test_malformed_tsv_rows_are_listed():
    _raises_one_line(r"malformed\.tsv: 2 malformed row\(s\) at line\(s\) 3, 5; expected 2 tab-separated fields",
                     CAPTIONS / "malformed.tsv")


def test_coco_annotations_of_unknown_image_ids_are_listed():
    _raises_one_line(r"coco_unknown_id\.json: 2 annotation\(s\) at annotations\[1, 3\] name an image_id not in "
                     r"'images' \(the first: 7\)", CAPTIONS / "coco_unknown_id.json", images_dir=IMAGES)


def test_malformed_coco_files(tmp_path):
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"images": [],\n "annotations": [,]}\n', encoding="utf-8")
    _raises_one_line(r"bad\.json:2: bad JSON", bad_json)
    not_coco = tmp_path / "list.json"
    not_coco.write_text("[1, 2]\n", encoding="utf-8")
    _raises_one_line(r"list\.json: expected a COCO captions object with lists 'images' and 'annotations'", not_coco)
    fields = tmp_path / "fields.json"
    fields.write_text('{"images": [{"id": 1, "file_name": "red.png"}], "annotations": '
                      '[{"image_id": 1, "caption": "ok"}, {"image_id": 1, "text": "no caption key"}]}',
                      encoding="utf-8")
    _raises_one_line(r"fields\.json: 1 malformed annotation\(s\) at annotations\[1\]", fields, images_dir=IMAGES)
    twice = tmp_path / "twice.json"
    twice.write_text('{"images": [{"id": 1, "file_name": "red.png"}, {"id": 1, "file_name": "blue.png"}], '
                     '"annotations": [{"image_id": 1, "caption": "Red or blue?"}]}', encoding="utf-8")
    _raises_one_line(r"twice\.json: 1 image\(s\) at images\[1\] repeat an earlier 'id'", twice, images_dir=IMAGES)
    _raises_one_line(r"Received split='train', but a COCO captions file holds one split",
                     CAPTIONS / "coco_captions.json", split="train")


def test_an_image_in_two_splits_is_an_error(tmp_path):
    path = tmp_path / "leak.csv"
    path.write_text("image,caption,split\nred.png,A.,train\nblue.png,B.,test\nred.png,C.,test\n", encoding="utf-8")
    _raises_one_line(r"image 'red\.png' has captions in split 'train' \(line 2\) and 'test' \(line 4\); expected each "
                     r"image in one split", path, images_dir=IMAGES)


def test_columns_and_splits_are_checked():
    _raises_one_line(r"no column 'path'; columns present: image, caption, split", CAPTIONS / "captions.csv",
                     image_column="path")
    _raises_one_line(r"no rows with split='valid'; splits present: dev, test, train\.", CAPTIONS / "captions.csv",
                     split="valid")
    _raises_one_line(r"no column 'split' \(needed by split='train'\)", CAPTIONS / "captions_bad_items.jsonl",
                     split="train")
    _raises_one_line(r"Received split='train', but Flickr8k captions files have no split column; pass split_file=",
                     CAPTIONS / "flickr8k_captions.txt", split="train")


def test_missing_and_empty_files(tmp_path):
    _raises_one_line(r"nope\.txt: no such file", tmp_path / "nope.txt")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    _raises_one_line(r"empty\.jsonl: file is empty; expected a header row and rows of image paths and captions", empty)
