"""Captioning's side of `attn-zoo train`: the caption tokenizer, the feature cache and the batches.

With a frozen encoder the CNN gives every image the same feature grid at every epoch, so it runs
once per image: `FeatureCache` writes the grids of a split to the run folder (float16, one
`.npy` per split, with the list of images it holds), and `CaptionBatches` draws teacher-forcing
batches of (grid, caption) pairs from it, so an epoch costs only the decoder
(`benchmarks/caption_speed.py` measures the difference). An image that does not load is left
out with one line naming it; the rest train.

    runs/<name>/features/train.npy     float16 (images, positions, channels)
    runs/<name>/features/train.json    {"images": [...], "image_size", "encoder", "left_out": [...]}

A captioner whose encoder trains (`train_encoder=True`) needs the images at every epoch: the same
cache then keeps them decoded (`train.pixels.npy`, uint8) and the batches feed `"images"`.

The batches are a `keras.utils.PyDataset` (numpy in), fed to `fit` as a `tf.data` pipeline whose
caption length is unknown (`CaptionBatches.as_tf_dataset`), as the text tasks' batches are.
"""

import json
import logging
import math
import os
from pathlib import Path

import keras
import numpy as np

logger = logging.getLogger("keras_attn_zoo")
CACHE_DTYPE = "float16"  # the grids are ReLU6 outputs in [0, 6]: float16 keeps 3 significant digits
ENCODE_CHUNK = 64  # images decoded and encoded at a time


def read_split(data, split):
    """`Captions` of one split of a recipe's [data] table (`source` is the image column)."""
    from keras_attn_zoo.caption_data import read_captions

    captions = read_captions(
        data["path"], split=split, format=data.get("format"), image_column=data["source"], caption_column=data["target"]
    )
    return captions


class FeatureCache:
    """The frozen encoder's grids of a list of images, computed once and kept in `folder`.

    With `pixels=True` it keeps the decoded images instead (uint8 (size, size, 3), fitted into the
    model's square), which is what a captioner whose encoder trains (`train_encoder=True`) reads at
    every epoch: each image is decoded once all the same.
    """

    def __init__(self, folder, name, pixels=False):
        self.folder = Path(folder)
        self.pixels = pixels
        name = f"{name}.pixels" if pixels else name
        self.array_path = self.folder / f"{name}.npy"
        self.index_path = self.folder / f"{name}.json"

    def _key(self, model):
        if self.pixels:
            return {"image_size": model.image_size, "pixels": True}
        return {"image_size": model.image_size, "encoder": model.encoder, "feature_layer": model.feature_layer}

    def _valid_for(self, images, model):
        if not (self.array_path.exists() and self.index_path.exists()):
            return None
        index = json.loads(self.index_path.read_text())
        key = self._key(model)
        if index.get("requested") != images or any(index.get(name) != value for name, value in key.items()):
            return None
        return index

    def load(self, images, model, progress=True):
        """`(grids float16 (n_ok, positions, C), positions in `images` of each row, left-out lines)`."""
        images = [str(path) for path in images]
        index = self._valid_for(images, model)
        if index is None:
            index = self._compute(images, model, progress)
        grids = np.load(self.array_path, mmap_mode="r")
        return grids, index["rows"], index["left_out"]

    def _compute(self, images, model, progress):
        from keras_attn_zoo.images import load_images

        self.folder.mkdir(parents=True, exist_ok=True)
        if self.pixels:
            shape, dtype = (len(images), model.image_size, model.image_size, 3), "uint8"
        else:
            shape, dtype = (len(images), model.feature_grid**2, model.feature_channels), CACHE_DTYPE
        partial = self.array_path.with_suffix(".partial.npy")
        grids = np.lib.format.open_memmap(partial, mode="w+", dtype=dtype, shape=shape)
        rows, left_out, written = [], [], 0
        bar = keras.utils.Progbar(len(images), unit_name="image") if progress else None
        for start in range(0, len(images), ENCODE_CHUNK):
            chunk = images[start : start + ENCODE_CHUNK]
            loaded = load_images(chunk, size=model.image_size)
            left_out += [str(error) for _, error in loaded.errors]
            if len(loaded.index):
                features = loaded.pixels if self.pixels else model.encode_images(loaded.pixels)
                grids[written : written + len(features)] = features.astype(dtype)
                rows += [start + i for i in loaded.index]
                written += len(features)
            if bar is not None:
                bar.update(min(start + ENCODE_CHUNK, len(images)))
        grids.flush()
        del grids
        # Keep only the rows written (images that loaded), then publish array and index together.
        # When every image loaded the partial file is the array already: moved, not copied again.
        if written == len(images):
            os.replace(partial, self.array_path)
        else:
            np.save(self.array_path, np.ascontiguousarray(np.load(partial, mmap_mode="r")[:written]))
            partial.unlink()
        for line in left_out:
            logger.warning("Left out of training: %s", line)
        index = {"requested": images, "rows": rows, "left_out": left_out, **self._key(model)}
        self.index_path.write_text(json.dumps(index))
        return index


class CaptionBatches(keras.utils.PyDataset):
    """Teacher-forcing batches `({"features", "target_ids"}, labels)` over cached grids.

    With `input_name="images"` the cached arrays are decoded images (uint8), fed as `"images"`.

    One example per (image, caption) pair; captions are cut to `max_target_length - 1` pieces
    (room for bos / eos) and padded with 0 to the longest in the batch, rounded up to a multiple
    of `length_multiple` when given (JAX compiles once per shape: see
    `training.length_multiples`). `shuffle` reshuffles the pairs every epoch.
    """

    def __init__(
        self, grids, pairs, batch_size=64, shuffle=True, seed=0, length_multiple=None, input_name="features", **kwargs
    ):
        super().__init__(**kwargs)
        self.grids, self.pairs, self.batch_size, self.shuffle = grids, pairs, batch_size, shuffle
        self.input_name = input_name
        self.dtype = np.uint8 if grids.dtype == np.uint8 else np.float32
        self.length_multiple = length_multiple
        self.rng = np.random.default_rng(seed)
        self.order = np.arange(len(pairs))
        if shuffle:
            self.rng.shuffle(self.order)

    def __len__(self):
        return math.ceil(len(self.pairs) / self.batch_size)

    def __getitem__(self, index):
        chosen = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        rows = [self.pairs[i][0] for i in chosen]
        sequences = [self.pairs[i][1] for i in chosen]
        width = max(len(ids) for ids in sequences) - 1
        if self.length_multiple:
            width = -(-width // self.length_multiple) * self.length_multiple
        inputs = np.zeros((len(chosen), width), "int32")
        labels = np.zeros((len(chosen), width), "int32")
        for row, ids in enumerate(sequences):
            inputs[row, : len(ids) - 1] = ids[:-1]
            labels[row, : len(ids) - 1] = ids[1:]
        order = np.argsort(rows)  # memory-mapped reads in file order
        features = np.empty((len(chosen),) + self.grids.shape[1:], self.dtype)
        features[order] = self.grids[np.asarray(rows)[order]]
        return {self.input_name: features, "target_ids": inputs}, labels

    def on_epoch_end(self):
        if self.shuffle:
            self.rng.shuffle(self.order)

    def as_tf_dataset(self):
        """The batches as a `tf.data.Dataset` (what `attn-zoo train` fits on, on every backend).

        Keras' own adapter for a `PyDataset` fixes each dimension that its first batches agree
        on, and batches of captions differ in length later on; here the caption length is None
        in the declared signature. Each pass over the dataset is one epoch, reshuffled.
        """
        import tensorflow as tf

        def epoch():
            for index in range(len(self)):
                yield self[index]
            self.on_epoch_end()

        ids = tf.TensorSpec((None, None), tf.int32)
        grids = tf.TensorSpec((None,) + tuple(self.grids.shape[1:]), tf.as_dtype(self.dtype))
        signature = ({self.input_name: grids, "target_ids": ids}, ids)
        dataset = tf.data.Dataset.from_generator(epoch, output_signature=signature)
        return dataset.apply(tf.data.experimental.assert_cardinality(len(self))).prefetch(2)


class CaptionTrainingData:
    """What `attn-zoo train` needs of a captioning recipe (the text tasks' twin is `TextTrainingData`).

    `builder_args` are the recipe builder's positional arguments (the caption tokenizer);
    `datasets(model)` caches the grids with the built model's encoder and returns the training
    and dev batches.
    """

    def __init__(self, spec, run_dir, hp, seed):
        from keras_attn_zoo.tokenizer import SubwordTokenizer

        data = spec["data"]
        self.spec, self.run_dir, self.hp, self.seed = spec, Path(run_dir), hp, seed
        self.train = read_split(data, data.get("train_split", "train"))
        self.dev = read_split(data, data.get("dev_split", "dev"))
        if hp["max_train_examples"]:
            self.train.items = self.train.items[: hp["max_train_examples"]]
        if hp["init_from"]:  # a fine-tune writes with the vocabulary its weights were trained on
            from keras_attn_zoo.checkpoint import checkpoint_folder, copy_tokenizers

            copy_tokenizers(checkpoint_folder(hp["init_from"]), self.run_dir / "tokenizers", ("target.spm.model",))
        path = self.run_dir / "tokenizers" / "target.spm.model"
        if path.exists():
            tokenizer = SubwordTokenizer.load(path)
        else:
            options = spec.get("tokenizer", {})
            captions = [caption for _, group in self.train for caption in group]
            logger.info("Training the caption tokenizer on %d captions", len(captions))
            tokenizer = SubwordTokenizer.train(
                captions,
                vocab_size=options.get("vocab_size", options.get("target_vocab_size", 4000)),
                model_type=options.get("model_type", "unigram"),
                seed=seed,
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            tokenizer.save(path)
        self.tokenizer = tokenizer
        self.builder_args = (tokenizer,)
        self.model_defaults = {"max_target_length": hp["max_target_length"]}
        self.train_examples = sum(len(group) for _, group in self.train)
        self.dev_examples = sum(len(group) for _, group in self.dev)

    def _batches(self, captions, name, model, shuffle):
        pixels = bool(getattr(model, "train_encoder", False))  # the encoder trains: images in, not grids
        cache = FeatureCache(self.run_dir / "features", name, pixels=pixels)
        grids, rows, _ = cache.load([p for p, _ in captions], model)
        limit = self.hp["max_target_length"]
        bos, eos = self.tokenizer.bos_id, self.tokenizer.eos_id
        pairs = []
        for row, position in enumerate(rows):
            for ids in self.tokenizer.encode(captions[position][1]):
                pairs.append((row, [bos] + list(ids)[: limit - 1] + [eos]))
        multiples = self.length_multiples
        return CaptionBatches(
            grids, pairs, self.hp["batch_size"], shuffle=shuffle, seed=self.seed,
            length_multiple=multiples[1] if multiples else None, input_name="images" if pixels else "features",
        ).as_tf_dataset()

    def datasets(self, model, length_multiples=None):
        """Training and dev batches; `length_multiples` is `training.length_multiples()` (source, target)."""
        self.length_multiples = length_multiples
        return self._batches(self.train, "train", model, True), self._batches(self.dev, "dev", model, False)
