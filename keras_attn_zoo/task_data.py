"""The evaluation data of each task: one registry of readers that `attn-zoo evaluate` and the recipes call.

    examples = read_examples(task, path, source, target, split="test")
    predictions = model.predict_inputs(examples.inputs, **search)       # every model implements it
    scores = metrics_for(task).score(examples.sources, hypotheses, examples.references, None,
                                     {**examples.extras, "predictions": predictions})

A reader returns `Examples`: the model's inputs (texts, or image paths), per input its reference or
references, the sources as text (what the summary figures compare against; an image's path), and
any extras the records carry, each a list with one entry per input (a Fashion-MNIST scene's
"items": label, row and column of each thing in it). A new task adds a reader here and nothing
in the CLI changes.
"""

import dataclasses
import os
from pathlib import Path

from keras_attn_zoo.errors import UnknownNameError


@dataclasses.dataclass
class Examples:
    """What a task's reader found: `inputs`, `references`, `sources` and `extras` (name -> list)."""

    inputs: list
    references: list
    sources: list
    extras: dict = dataclasses.field(default_factory=dict)

    def __len__(self):
        return len(self.inputs)

    def head(self, limit):
        """The first `limit` examples (all with None)."""
        if limit is None:
            return self
        return Examples(
            self.inputs[:limit], self.references[:limit], self.sources[:limit],
            {name: values[:limit] for name, values in self.extras.items()},
        )


def _read_pairs(path, source, target, split=None, prefix=None, format=None):
    from keras_attn_zoo.data import read_pairs

    sources, references = read_pairs(path, source, target, split=split, prefix=prefix, format=format)
    return Examples(list(sources), list(references), list(sources))


# The extras a captions file may carry per image, read from JSONL records.
CAPTION_EXTRAS = ("items",)


def _read_captions(path, source, target, split=None, prefix=None, format=None):
    """Images (paths) with all their captions; from JSONL records, their "items" when any has them."""
    from keras_attn_zoo import caption_data, record_files

    captions = caption_data.read_captions(path, split=split, format=format, image_column=source, caption_column=target)
    inputs = [str(image) for image, _ in captions]
    examples = Examples(inputs, [list(texts) for _, texts in captions], list(inputs))
    path = Path(path)
    fmt = record_files.resolve_format(
        path, format, caption_data.FORMATS, caption_data._SUFFIXES, caption_data._FORMAT_ALIASES
    )
    if fmt != "jsonl" or not isinstance(source, str):
        return examples
    records, _ = record_files.parse_jsonl(path, record_files.read_lines(path, expected="JSON records"))
    base = path.parent
    found = {name: {} for name in CAPTION_EXTRAS}
    for _, record in records:
        image = record.get(source)
        if not isinstance(image, str):
            continue
        key = os.path.normpath(base / image.strip())
        for name in CAPTION_EXTRAS:
            if record.get(name) is not None:
                found[name].setdefault(key, record[name])
    for name, by_image in found.items():
        if by_image:
            examples.extras[name] = [by_image.get(os.path.normpath(image)) for image in inputs]
    return examples


READERS = {
    "translation": _read_pairs,
    "summarization": _read_pairs,
    "captioning": _read_captions,
    "image-to-text": _read_captions,
}


def read_examples(task, path, source, target, split=None, prefix=None, format=None):
    """The `Examples` of a data file for a model of `task` (None: translation, as old checkpoints).

    Args:
        task: "translation", "summarization", "captioning", ...
        path: the data file.
        source: the input column (a name or 0-based index): the text, or the image path.
        target: the reference column.
        split: keep the rows of this split.
        prefix: text tasks: a column put before each source as "PREFIX: SOURCE".
        format: the file's format; by default from its name.

    Raises:
        UnknownNameError: no reader for the task.
        DataError: the file cannot be read (see `data.read_pairs`, `caption_data.read_captions`).
    """
    from keras_attn_zoo.recipes.registry import closest

    task = task or "translation"
    if task not in READERS:
        raise UnknownNameError(f"No data reader for task {task!r}." + closest(task, READERS))
    return READERS[task](path, source, target, split=split, prefix=prefix, format=format)
