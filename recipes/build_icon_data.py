"""Builds the icons + clip art captioning set from registry packages: Noto emoji and openclipart.

Sources (exactly these; all text is human-written):

- npm `emoji-datasource-google` 16.0.0 (package MIT, Noto images Apache-2.0): `emoji.json` and
  `img/google/64/*.png`, skin-tone variants included. Caption: the CLDR short name from Unicode's
  `emoji-test.txt` (Debian `unicode-data`: /usr/share/unicode/emoji/emoji-test.txt) for the
  fully-qualified code points ("waving hand: light skin tone" -> "waving hand light skin tone"),
  else emoji.json's `name` in lower case (emoji newer than that file).
- Debian `openclipart-png` and `openclipart-svg` 1:0.18 (public domain): each PNG under
  /usr/share/openclipart/png/ with the `<dc:title>` of the work (not of its creator or publisher,
  and not when it merely repeats the creator's name) in the SVG of the same path under svg/. Titles are cleaned (`clean_title`): white space folded;
  dropped when one word, file-name-like (an extension, an underscore, "new document 1"), naming a
  collection, clip art, a theme or an author ("Clipart by ...", "Part of the Flat Icon Collection
  ...", "Lemon SVG theme", "... by ..."), and, over the whole set, titles used by more than 3
  images.

Images: every image is composited onto white (clip art drawn in black on a transparent background
would otherwise turn into a black square), fitted within 256x256 with its aspect ratio kept and
written as RGB PNG; byte-identical source files count once (symlinked and copied clip art), and an
image over `max_pixels` (the 20,990x29,700 one) is skipped with one line. The split is by image,
never by caption: by a hash of the image's group (the emoji without its skin tone, so all tones of
one emoji fall on the same side; the clip art file's content), test 10%, dev 5%, train 85%.

Output (kept out of git), under --out:

    images/{sha1 of the source file, 16 hex}.png
    captions.jsonl    {"image", "caption", "split", "source": "noto-emoji"|"openclipart", "origin"}
    skipped.txt       one line per image or title left out, with the reason

Usage (install the inputs first):

    apt-get install openclipart-png openclipart-svg unicode-data
    npm pack emoji-datasource-google@16.0.0                 # -> emoji-datasource-google-16.0.0.tgz
    python recipes/build_icon_data.py --out data/icons --emoji-package emoji-datasource-google-16.0.0.tgz
"""

import argparse
import collections
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

EMOJI_PACKAGE = "emoji-datasource-google@16.0.0"
EMOJI_TEST = Path("/usr/share/unicode/emoji/emoji-test.txt")
OPENCLIPART = Path("/usr/share/openclipart")
MAX_TITLE_USES = 3
IMAGE_SIZE = 256
SPLITS = (("test", 10), ("dev", 5), ("train", 85))

DC = "{http://purl.org/dc/elements/1.1/}"
CC = "{http://creativecommons.org/ns#}"
AGENT_PARENTS = {DC + "creator", DC + "publisher", DC + "rights", DC + "contributor", CC + "Agent"}

_DROP_PATTERNS = [
    (re.compile(r"\bclip\s*-?\s*arts?\b", re.I), "names clip art"),
    (re.compile(r"\bcollection\b", re.I), "names a collection"),
    (re.compile(r"\btheme\b", re.I), "names a theme"),
    (re.compile(r"(^|\s)by\s", re.I), "names an author"),
    (re.compile(r"\.(svg|png|jpe?g|gif|bmp|ai|eps|wmf|pdf)\b", re.I), "file-name-like"),
    (re.compile(r"_"), "file-name-like"),
    (re.compile(r"^(new document|untitled|drawing|image|layer|path)\b[\s\d-]*$", re.I), "file-name-like"),
]


def clean_title(title):
    """(cleaned title, None) or (None, reason) for one openclipart title; the frequency rule is separate."""
    if title is None:
        return None, "no title"
    text = " ".join(title.split())
    if not text:
        return None, "no title"
    for pattern, reason in _DROP_PATTERNS:
        if pattern.search(text):
            return None, reason
    if len(text.split()) < 2:
        return None, "one word"
    return text, None


def frequent_titles(pairs, max_uses=MAX_TITLE_USES):
    """The titles (case-folded) of (image key, title) pairs used by more than `max_uses` distinct images."""
    images_per_title = collections.defaultdict(set)
    for image, title in pairs:
        images_per_title[title.casefold()].add(image)
    return {title for title, images in images_per_title.items() if len(images) > max_uses}


def svg_title(path):
    """The `<dc:title>` of the work in an SVG's metadata, or None; also None when it only repeats
    the name of the creator, publisher or rights holder (titles inside those are agents' names)."""
    stack, title, agents = [], None, set()
    try:
        for event, element in ElementTree.iterparse(path, events=("start", "end")):
            if event == "start":
                stack.append(element.tag)
                continue
            stack.pop()
            if element.tag == DC + "title":
                text = " ".join((element.text or "").split())
                if AGENT_PARENTS.intersection(stack):
                    agents.add(text.casefold())
                elif title is None:
                    title = text
            if element.tag.endswith("}metadata"):
                break
            if not stack[1:]:
                element.clear()
    except ElementTree.ParseError:
        return None
    if title is not None and title.casefold() in agents:
        return None
    return title


def read_emoji_test(path):
    """{code points 'XXXX-YYYY' upper case: CLDR name} for the fully-qualified lines of emoji-test.txt."""
    names = {}
    with open(path, encoding="utf-8") as file:
        for line in file:
            if line.startswith("#") or ";" not in line:
                continue
            codes, rest = line.split(";", 1)
            status, _, comment = rest.partition("#")
            if status.strip() != "fully-qualified":
                continue
            name = re.sub(r"^\S+\s+E\d+\.\d+\s+", "", comment.strip())
            names["-".join(codes.split()).upper()] = name
    return names


def emoji_caption(name):
    """A CLDR name as a caption: colons dropped, white space folded ("flag: Spain" -> "flag Spain")."""
    return " ".join(name.replace(":", " ").split())


def emoji_items(package, cldr_names):
    """(image path, caption, group) for every Noto emoji image, skin-tone variants included."""
    package = Path(package)
    entries = json.loads((package / "emoji.json").read_text(encoding="utf-8"))
    folder = package / "img" / "google" / "64"
    items = []
    for entry in entries:
        variants = [(entry["unified"], entry["image"], entry.get("has_img_google"))]
        for variant in (entry.get("skin_variations") or {}).values():
            variants.append((variant["unified"], variant["image"], variant.get("has_img_google")))
        for unified, image, has_image in variants:
            if not has_image:
                continue
            name = cldr_names.get(unified.upper()) or entry["name"].lower()
            items.append((folder / image, emoji_caption(name), "emoji:" + entry["unified"].upper()))
    return items


def split_of(group):
    """test / dev / train from a stable hash of the image's group."""
    bucket = int(hashlib.sha1(group.encode("utf-8")).hexdigest(), 16) % 100
    for split, share in SPLITS:
        if bucket < share:
            return split
        bucket -= share
    raise AssertionError("shares must add up to 100")


def clipart_items(root, skipped):
    """(png path, title) for every openclipart PNG with a cleaned title; drops go to `skipped`."""
    root = Path(root)
    pairs = []
    for png in sorted((root / "png").rglob("*.png")):
        svg = (root / "svg" / png.relative_to(root / "png")).with_suffix(".svg")
        title, reason = clean_title(svg_title(svg) if svg.exists() else None)
        if title is None:
            skipped.append(f"{png}: {reason}")
            continue
        pairs.append((png, title))
    return pairs


def file_sha1(path):
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


def build(out, emoji_package, emoji_test, openclipart, max_pixels=50_000_000, size=IMAGE_SIZE):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from PIL import Image

    from keras_attn_zoo.images import ImageError, decode_image

    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    skipped = []
    candidates = []  # (path, caption, source, group or None for "by content")
    if emoji_package:
        cldr = read_emoji_test(emoji_test) if emoji_test and Path(emoji_test).exists() else {}
        candidates += [(path, caption, "noto-emoji", group) for path, caption, group in emoji_items(emoji_package, cldr)]
    if openclipart:
        pairs = clipart_items(openclipart, skipped)
        frequent = frequent_titles([(file_sha1(path), title) for path, title in pairs])
        for path, title in pairs:
            if title.casefold() in frequent:
                skipped.append(f"{path}: title {title!r} used by more than {MAX_TITLE_USES} images")
            else:
                candidates.append((path, title, "openclipart", None))

    records, written, seen_captions = [], {}, set()
    for path, caption, source, group in candidates:
        digest = file_sha1(path)[:16]
        if (digest, caption) in seen_captions:
            continue  # the same file under another path with the same caption
        seen_captions.add((digest, caption))
        if digest not in written:
            try:
                rgb = decode_image(path, max_pixels=max_pixels)
            except ImageError as error:
                skipped.append(str(error))
                continue
            image = Image.fromarray(rgb)
            image.thumbnail((size, size), Image.BILINEAR)
            image.save(out / "images" / f"{digest}.png")
            written[digest] = split_of(group or "clipart:" + digest)
        records.append({"image": f"images/{digest}.png", "caption": caption, "split": written[digest],
                        "source": source, "origin": str(path)})
    with open(out / "captions.jsonl", "w", encoding="utf-8") as file:
        for record in records:
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
    (out / "skipped.txt").write_text("".join(line + "\n" for line in skipped), encoding="utf-8")
    return records, skipped


def unpack_emoji_package(argument, workdir):
    """A folder holding emoji.json: the given folder, the given .tgz unpacked, or `npm pack` fetched."""
    if argument and Path(argument).is_dir():
        return Path(argument)
    if not argument:
        subprocess.run(["npm", "pack", EMOJI_PACKAGE, "--pack-destination", str(workdir)], check=True,
                       stdout=subprocess.DEVNULL)
        argument = next(Path(workdir).glob("emoji-datasource-google-*.tgz"))
    with tarfile.open(argument) as archive:
        archive.extractall(workdir, filter="data")
    return Path(workdir) / "package"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--emoji-package", help="emoji-datasource-google folder or .tgz (default: npm pack it)")
    parser.add_argument("--emoji-test", default=str(EMOJI_TEST))
    parser.add_argument("--openclipart", default=str(OPENCLIPART), help="folder holding png/ and svg/")
    parser.add_argument("--no-emoji", action="store_true")
    parser.add_argument("--no-clipart", action="store_true")
    args = parser.parse_args(argv)
    if not args.no_clipart and not (Path(args.openclipart) / "svg").is_dir():
        parser.error(f"{args.openclipart}/svg is missing: apt-get install openclipart-png openclipart-svg")
    with tempfile.TemporaryDirectory() as workdir:
        package = None if args.no_emoji else unpack_emoji_package(args.emoji_package, workdir)
        records, skipped = build(args.out, package, args.emoji_test, None if args.no_clipart else args.openclipart)
    counts = collections.Counter((r["source"], r["split"]) for r in records)
    images = len({r["image"] for r in records})
    print(f"wrote {len(records)} captions of {images} images to {os.path.join(args.out, 'captions.jsonl')}; "
          f"{dict(sorted(counts.items()))}; {len(skipped)} left out (skipped.txt)")


if __name__ == "__main__":
    main()
