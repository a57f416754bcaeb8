"""Captioning data: reading (image, captions) from the files captioning sets come in.

    read_captions("Flickr8k.token.txt", images_dir="Flicker8k_Dataset",
                  split_file="Flickr_8k.trainImages.txt")              # Flickr8k / Flickr30k
    read_captions("annotations/captions_val2014.json", images_dir="val2014")   # COCO
    read_captions("captions.jsonl", split="train")                    # CSV / TSV / JSONL, optionally .gz

Each returns a `Captions`: `items`, a list of `(image_path, [caption, ...])` with one entry per
image (its captions in file order, images in the order they first appear), and `skipped`, one
`Skipped` per image or caption left out, each printable as one line naming the data file and the
lines (for COCO, the annotations) it came from. Iterating over a `Captions` iterates over `items`.

What stops reading (a `DataError`, one line naming the file and the lines): a missing or non-UTF-8
file, malformed rows (TSV/CSV fields not matching the header, bad JSON, Flickr lines without
`name<TAB>caption`, COCO entries without `id`/`file_name` or `image_id`/`caption`), COCO annotations
of image ids that are not in `images`, one image with captions in two splits (a split is by image,
never by caption), an unknown split, and nothing left to return.

What is skipped and reported, so one bad item does not sink the others: empty captions, image files
that do not exist and, with `check_images=True`, files that do not decode as images
(`keras_attn_zoo.images.decode_image`: empty, truncated, not an image, over `max_pixels`). One
warning line says how many were skipped; `Captions.skipped` lists them all.
"""

import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from keras_attn_zoo import record_files
from keras_attn_zoo.errors import DataError
from keras_attn_zoo.images import DEFAULT_MAX_PIXELS, ImageError, decode_image

FORMATS = ("flickr8k", "coco", "tsv", "csv", "jsonl")
_SUFFIXES = {
    ".txt": "flickr8k",
    ".token": "flickr8k",
    ".json": "coco",
    ".tsv": "tsv",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_FORMAT_ALIASES = {"flickr": "flickr8k", "flickr30k": "flickr8k", "json": "coco", "ndjson": "jsonl"}
_FLICKR_NAME = re.compile(r"^(.*?)(?:#\d+)?$")


@dataclass(frozen=True)
class Skipped:
    """An image or caption left out: where it was in the data file, the image (or None), and why."""

    location: str
    image: Path
    reason: str

    def __str__(self):
        return f"{self.location}: {self.reason}"


@dataclass
class Captions:
    """The result of `read_captions`: `items` [(image_path, [captions])], `skipped` [Skipped]."""

    items: list
    skipped: list = field(default_factory=list)

    def __iter__(self):
        return iter(self.items)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


@dataclass
class _Row:
    ref: int  # a line number, or for COCO an index into `annotations`
    image: str  # as written in the file
    captions: list
    split: str = None


def read_captions(
    path,
    images_dir=None,
    split=None,
    format=None,
    image_column="image",
    caption_column="caption",
    split_file=None,
    check_images=False,
    max_pixels=DEFAULT_MAX_PIXELS,
):
    """Reads captioned images from a local file, grouped by image.

    Args:
        path: a Flickr8k-style captions file (`.txt` or `.token`: lines `image.jpg#0<TAB>caption`,
            no header), a COCO captions `.json` (`images` with `id` and `file_name`, `annotations`
            with `image_id` and `caption`), or a `.tsv`, `.csv` or `.jsonl` file with a header (or
            keys) naming an image column and a caption column; any of them optionally gzipped.
        images_dir: the folder relative image paths are resolved against; by default the folder
            of `path`. Absolute image paths are used as they are.
        split: for TSV/CSV/JSONL, keep only rows whose `split` column equals this (e.g. "train").
            Flickr8k files have no split column (use `split_file`); a COCO file is one split.
        format: "flickr8k", "coco", "tsv", "csv" or "jsonl"; by default taken from the file name.
        image_column: TSV/CSV/JSONL column holding the image path (a name or a 0-based index).
        caption_column: TSV/CSV/JSONL column holding the caption; in JSONL it may hold a list of
            captions.
        split_file: a text file of image names, one per line (Flickr8k's `Flickr_8k.trainImages.txt`):
            keep only the images it lists, matched by the name as written in `path` or its last
            part. Works with every format.
        check_images: also decode every image (`keras_attn_zoo.images.decode_image`) and skip
            those that do not decode. Without it, only that the file exists is checked.
        max_pixels: with `check_images`, images over this many pixels are skipped (JPEGs are
            decoded at reduced size instead, as `decode_image` does).

    Returns:
        `Captions`: `.items` a list of `(pathlib.Path, [str, ...])`, one per image, captions
        stripped and in file order; `.skipped` a list of `Skipped` (`str()` of each is one line
        naming the data file, the line(s) and the reason).

    Raises:
        DataError: one line naming the file and the lines: missing or unreadable file, malformed
            rows, missing column, COCO annotations of unknown image ids, an image in two splits,
            an unknown split, or no image left.
    """
    path = Path(path)
    fmt = record_files.resolve_format(path, format, FORMATS, _SUFFIXES, _FORMAT_ALIASES)
    if fmt == "flickr8k":
        if split is not None:
            raise DataError(f"{path}: Received split={split!r}, but Flickr8k captions files have no split column; "
                            "pass split_file= (e.g. Flickr_8k.trainImages.txt).")
        rows, unit = _flickr_rows(path), "line"
    elif fmt == "coco":
        if split is not None:
            raise DataError(f"{path}: Received split={split!r}, but a COCO captions file holds one split; "
                            "read that split's file (e.g. captions_val2014.json).")
        rows, unit = _coco_rows(path), "annotation"
    else:
        rows, unit = _table_rows(path, fmt, image_column, caption_column, split), "line"

    def where(refs):
        return f"{path}: {unit}(s) {record_files.list_lines(refs)}"

    skipped = []
    if split_file is not None:
        rows = _filter_by_split_file(path, rows, Path(split_file), skipped)

    base = Path(images_dir) if images_dir is not None else path.parent
    if images_dir is not None and not base.is_dir():
        raise DataError(f"{base}: no such folder; expected the folder of the images named in {path} (images_dir=).")
    groups = {}  # image path -> ([captions], [refs])
    for row in rows:
        image = Path(os.path.normpath(base / row.image))
        captions = [record_files.text(c) for c in row.captions]
        if not all(captions):
            skipped.append(Skipped(where([row.ref]), image, "empty caption"))
            captions = [c for c in captions if c]
            if not captions:
                continue
        texts, refs = groups.setdefault(image, ([], []))
        texts.extend(captions)
        refs.append(row.ref)

    items = []
    for image, (texts, refs) in groups.items():
        if not image.is_file():
            reason = f"{image}: {'is not a file' if image.exists() else 'no such file'}"
            skipped.append(Skipped(where(refs), image, reason))
            continue
        if check_images:
            try:
                decode_image(image, max_pixels=max_pixels)
            except ImageError as error:
                skipped.append(Skipped(where(refs), image, str(error)))
                continue
        items.append((image, texts))

    if not items:
        first = f"; the first: {skipped[0]}" if skipped else ""
        raise DataError(f"{path}: no image left with a non-empty caption{first} "
                        f"(images resolved against {base}; pass images_dir= if they are elsewhere).")
    if skipped:
        first = str(skipped[0]).removeprefix(f"{path}: ")
        warnings.warn(f"{path}: skipped {len(skipped)} image(s) or caption(s); the first: {first} "
                      "(all are in Captions.skipped).", stacklevel=2)
    return Captions(items, skipped)


def _flickr_rows(path):
    lines = record_files.read_lines(path, expected="lines image.jpg#0<TAB>caption")
    rows, bad = [], []
    for number, line in lines:
        if not line.strip():
            continue
        name, tab, caption = line.partition("\t")
        name = _FLICKR_NAME.match(name.strip()).group(1)
        if not tab or not name:
            bad.append(number)
            continue
        rows.append(_Row(number, name, [caption]))
    if bad:
        raise DataError(
            f"{path}: {len(bad)} malformed row(s) at line(s) {record_files.list_lines(bad)}; expected "
            "image.jpg#0<TAB>caption (for a file with a header row, pass format='csv' or 'tsv')."
        )
    return rows


def _coco_rows(path):
    lines = record_files.read_lines(path, expected="a COCO captions JSON object")
    try:
        data = json.loads("\n".join(text for _, text in lines))
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{error.lineno}: bad JSON ({error.msg} at column {error.colno}).") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise DataError(f"{path}: expected a COCO captions object with lists 'images' and 'annotations'.")

    files, bad, duplicate = {}, [], []
    for index, entry in enumerate(data["images"]):
        if not isinstance(entry, dict) or not _is_id(entry.get("id")) or not isinstance(entry.get("file_name"), str):
            bad.append(index)
        elif entry["id"] in files:
            duplicate.append(index)
        else:
            files[entry["id"]] = entry["file_name"]
    if bad:
        raise DataError(f"{path}: {len(bad)} malformed image(s) at images[{record_files.list_lines(bad)}]; "
                        "expected objects with an integer 'id' and a string 'file_name'.")
    if duplicate:
        raise DataError(f"{path}: {len(duplicate)} image(s) at images[{record_files.list_lines(duplicate)}] "
                        "repeat an earlier 'id'; expected each id once.")

    rows, bad, unknown = [], [], []
    for index, entry in enumerate(data["annotations"]):
        if not isinstance(entry, dict) or not _is_id(entry.get("image_id")) \
                or not isinstance(entry.get("caption"), str):
            bad.append(index)
        elif entry["image_id"] not in files:
            unknown.append(index)
        else:
            rows.append(_Row(index, files[entry["image_id"]], [entry["caption"]]))
    if bad:
        raise DataError(f"{path}: {len(bad)} malformed annotation(s) at annotations[{record_files.list_lines(bad)}]; "
                        "expected objects with an integer 'image_id' and a string 'caption'.")
    if unknown:
        first = data["annotations"][unknown[0]]["image_id"]
        raise DataError(f"{path}: {len(unknown)} annotation(s) at annotations[{record_files.list_lines(unknown)}] "
                        f"name an image_id not in 'images' (the first: {first}); expected ids of 'images'.")
    return rows


def _is_id(value):
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _table_rows(path, fmt, image_column, caption_column, split):
    expected = "a header row and rows of image paths and captions"
    lines = record_files.read_lines(path, expected=expected)
    if fmt == "jsonl":
        records, columns = record_files.parse_jsonl(path, lines)
    else:
        records, columns = record_files.parse_delimited(path, lines, fmt, expected="rows of image paths and captions")
    image_key = record_files.column(path, image_column, columns)
    caption_key = record_files.column(path, caption_column, columns)
    split_key = None
    if split is not None:
        split_key = record_files.column(path, "split", columns, purpose=f" (needed by split={split!r})")
    elif "split" in columns:
        split_key = "split"

    rows, bad = [], []
    for number, record in records:
        image = record_files.text(record.get(image_key))
        if not image:
            bad.append(number)
            continue
        value = record.get(caption_key)
        captions = value if isinstance(value, list) else [value]
        row_split = record_files.text(record.get(split_key)) if split_key is not None else None
        rows.append(_Row(number, image, captions, row_split))
    if bad:
        raise DataError(f"{path}: {len(bad)} row(s) without an image at line(s) {record_files.list_lines(bad)}; "
                        f"expected an image path in column {image_key!r}.")
    if split_key is not None:
        _check_one_split_per_image(path, rows)
    if split is not None:
        present = sorted({row.split for row in rows})
        rows = [row for row in rows if row.split == split]
        if not rows:
            raise DataError(f"{path}: no rows with split={split!r}; splits present: {', '.join(present)}.")
    return rows


def _check_one_split_per_image(path, rows):
    first = {}
    for row in rows:
        other = first.setdefault(row.image, row)
        if other.split != row.split:
            raise DataError(
                f"{path}: image {row.image!r} has captions in split {other.split!r} (line {other.ref}) and "
                f"{row.split!r} (line {row.ref}); expected each image in one split (split by image, not caption)."
            )


def _filter_by_split_file(path, rows, split_file, skipped):
    lines = record_files.read_lines(split_file, expected="image names, one per line")
    listed = {}
    for number, name in lines:
        if name.strip():
            listed.setdefault(name.strip(), number)
    kept, used = [], set()
    for row in rows:
        for name in (row.image, PurePosixPath(row.image.replace("\\", "/")).name):
            if name in listed:
                kept.append(row)
                used.add(name)
                break
    if not kept:
        example = f" (e.g. {rows[0].image!r})" if rows else ""
        raise DataError(f"{split_file}: none of its {len(listed)} image name(s) has a caption in {path}; "
                        f"expected names as written there{example}.")
    unused = sorted(number for name, number in listed.items() if name not in used)
    if unused:
        skipped.append(Skipped(f"{split_file}: line(s) {record_files.list_lines(unused)}", None,
                               f"{len(unused)} listed image(s) with no caption in {path}"))
    return kept
