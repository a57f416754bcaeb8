"""Captioning speed: `predict_images` against the tutorial's Python loop, and cached grids against the CNN per epoch.

The model is `--model` (a captioner checkpoint folder; default `runs/fashion_scenes_captioner/checkpoint`
when it exists), else a freshly built, untrained captioner of `recipes/fashion_scenes_captioner.toml`'s
size (EfficientNet-Lite0 ImageNet, 192 px, a 6x6 grid, LSTM of 256 units, a 40-word vocabulary);
the first line printed says which. The images are the files of `--images` (a folder), else
`--n-images` generated scenes (coloured rectangles on white, 160x120 PNGs).

(a) Captions per second, greedy, batch `--batch-size` (64), on the same images:

- `predict_images`: `Captioner.predict_images(paths, beam_size=1)`: decode and fit each image,
  the frozen CNN, then the whole search as one compiled loop;
- `naive`, the reference: the TensorFlow image-captioning tutorial's way with the same model and
  the same decoded images and CNN call: then one eager decoder step per word driven from Python
  (embed the previous word, `decoder.step`, logits, argmax), until every caption has ended or
  `max_target_length` words. The two give the same words (checked and printed).

An untrained model ends its captions at once; so that the decoder's work is measured, both then
forbid the end before `--min-length` words (default: max_target_length - 1 for an untrained model,
0 for a checkpoint), as `benchmarks/decoding_speed.py` does.

(b) Training epochs per second, one epoch of `model.fit` over (image, caption) pairs
(`--captions-per-image`, random caption ids of 12 words):

- `cached`: `caption_training.CaptionBatches` over the grids `FeatureCache` computed once (what
  `attn-zoo train` does); the one-time cost of making the cache is printed beside it;
- `recompute`, the reference: the same batches, but every batch runs the frozen CNN on its
  images before the decoder step (the images already decoded in memory: the CNN alone is the
  difference).

Candidates are timed once per repeat, interleaved (the order rotates), after a warm-up call; each
ratio is the median over repeats of the ratio within one repeat, because the machines are shared
and absolute times move with the load. The last lines are the ratios.

    python benchmarks/caption_speed.py
    python benchmarks/caption_speed.py --images data/fashion_scenes/images --model runs/x/checkpoint
    python benchmarks/caption_speed.py --quick     # smoke run
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from keras_attn_zoo.native_logs import quiet_import  # noqa: E402

quiet_import("keras")  # TensorFlow's load-time log lines silenced; oneDNN stays on

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from keras_attn_zoo.models.encoder_decoder import BOS_ID, EOS_ID, PAD_ID  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = Path("runs/fashion_scenes_captioner/checkpoint")
RECIPE = ROOT / "recipes" / "fashion_scenes_captioner.toml"


def fresh_captioner():
    """An untrained captioner of the fashion scenes recipe's size, with a 40-word tokenizer."""
    from keras_attn_zoo.recipes import captioning
    from keras_attn_zoo.training import load_recipe_file
    from keras_attn_zoo.tokenizer import SubwordTokenizer

    spec = load_recipe_file(RECIPE)
    options = dict(spec["recipe"])
    options.pop("name")
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(60)]
    texts = [" ".join(rng.choice(words, 8)) for _ in range(400)]
    tokenizer = SubwordTokenizer.train(texts, vocab_size=spec["tokenizer"]["vocab_size"], model_type="word")
    max_length = spec["training"]["max_target_length"]
    model = captioning(tokenizer, max_target_length=max_length, **options)
    return model, f"untrained captioner of {RECIPE.name} {options}"


def make_images(folder, count, seed):
    """`count` scenes: two or three coloured rectangles on a white 160x120 PNG."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        image = np.full((120, 160, 3), 255, np.uint8)
        for _ in range(rng.integers(2, 4)):
            top, left = rng.integers(0, 80), rng.integers(0, 120)
            image[top : top + rng.integers(20, 40), left : left + rng.integers(20, 40)] = rng.integers(0, 255, 3)
        path = Path(folder) / f"scene{index:04d}.png"
        Image.fromarray(image).save(path)
        paths.append(str(path))
    return paths


def naive_captions(model, paths, batch_size, min_length=0):
    """The tutorial's loop: decode, CNN, then one eager decoder step per word from Python, argmax each."""
    from keras_attn_zoo.images import load_images

    outputs = []
    for start in range(0, len(paths), batch_size):
        loaded = load_images(paths[start : start + batch_size], size=model.image_size)
        features = ops.convert_to_tensor(model.encode_images(loaded.pixels, batch_size=batch_size))
        memory, mask = model._encode(features, training=False)
        bundle = model.decoder.precompute_memory(memory, mask)
        state = model.decoder.get_initial_state(bundle, None)
        tokens = ops.full((len(loaded.index),), BOS_ID, dtype="int32")
        banned = np.zeros(model.target_vocab_size, bool)
        banned[[PAD_ID, BOS_ID]] = True  # never generated, as in the search
        words, done = [], np.zeros(len(loaded.index), bool)
        for step in range(model.max_target_length):
            banned[EOS_ID] = step < min_length  # as the search's min_length
            embedded = ops.take(model.target_embedding.embeddings, tokens, axis=0)
            output, state, _ = model.decoder.step(embedded, state, bundle)
            logits = ops.where(ops.convert_to_tensor(banned), -1e9, model._logits(output))
            tokens = ops.cast(ops.argmax(logits, axis=-1), "int32")
            chosen = ops.convert_to_numpy(tokens)
            words.append(np.where(done, PAD_ID, chosen))
            done |= chosen == EOS_ID
            if done.all():
                break
        for row in np.stack(words, axis=1).tolist():  # a caption that never ended: cut as the search cuts it
            outputs.append(row[: row.index(EOS_ID)] if EOS_ID in row else row[: model.max_target_length - 1])
    return outputs


class RecomputedBatches(keras.utils.PyDataset):
    """`CaptionBatches`, but each batch runs the frozen CNN on its images first (decoded pixels in memory)."""

    def __init__(self, model, pixels, batches, **kwargs):
        super().__init__(**kwargs)
        self.model, self.pixels, self.batches = model, pixels, batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, index):
        chosen = self.batches.order[index * self.batches.batch_size : (index + 1) * self.batches.batch_size]
        (inputs, labels) = self.batches[index]
        rows = [self.batches.pairs[i][0] for i in chosen]
        features = self.model.encode_images(self.pixels[rows], batch_size=len(rows))
        return {"features": features, "target_ids": inputs["target_ids"]}, labels


def interleaved(candidates, repeats, label):
    names = list(candidates)
    times = {name: [] for name in names}
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            candidates[name]()
            times[name].append(time.perf_counter() - start)
        print(f"  {label} repeat {repeat + 1}: " + ", ".join(f"{n} {times[n][-1]:.2f}s" for n in names), flush=True)
    return times


def median_ratio(times, fast, slow):
    return statistics.median(s / f for f, s in zip(times[fast], times[slow]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help=f"a captioner checkpoint  [default: {DEFAULT_MODEL} if it exists]")
    parser.add_argument("--images", default=None, help="a folder of images  [default: generated scenes]")
    parser.add_argument("--n-images", type=int, default=128, help="how many images (generated, or the first of --images)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--captions-per-image", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--min-length", type=int, default=None, help="no end before this many words  [default: see above]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="16 images, batch 8, one repeat: checks the script runs")
    args = parser.parse_args()
    if args.quick:
        args.n_images, args.batch_size, args.repeats = 16, 8, 1
    keras.utils.set_random_seed(args.seed)
    reference = args.model or (str(DEFAULT_MODEL) if DEFAULT_MODEL.is_dir() else None)
    if reference is not None:
        from keras_attn_zoo import from_pretrained

        model, described = from_pretrained(reference), f"checkpoint {reference}"
    else:
        model, described = fresh_captioner()
    print(f"model: {described}; image_size {model.image_size}, grid {model.feature_grid}x{model.feature_grid}, "
          f"{os.cpu_count()} CPUs, Keras {keras.__version__} ({keras.backend.backend()})", flush=True)
    scratch = tempfile.TemporaryDirectory()
    if args.images:
        suffixes = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")
        paths = sorted(str(p) for p in Path(args.images).iterdir() if p.suffix.lower() in suffixes)[: args.n_images]
        print(f"images: {len(paths)} from {args.images}")
    else:
        paths = make_images(scratch.name, args.n_images, args.seed)
        print(f"images: {len(paths)} generated scenes (160x120)")

    # -- (a) captions per second ----------------------------------------------------------------
    min_length = args.min_length if args.min_length is not None else (0 if reference else model.max_target_length - 1)
    print(f"captions: greedy, at most {model.max_target_length} words, no end before {min_length} words")
    candidates = {
        # Every option given, so that the model's own defaults (a preset may ban <unk>) do not
        # make the search decode differently from the plain loop.
        "predict_images": lambda: model.predict_images(
            paths, beam_size=1, batch_size=args.batch_size, min_length=min_length, ban_unk=False,
            no_repeat_ngram_size=0, max_length=model.max_target_length,
        ),
        "naive": lambda: naive_captions(model, paths, args.batch_size, min_length),
    }
    results = {}
    for name, run in candidates.items():
        start = time.perf_counter()
        results[name] = run()
        print(f"  warm-up {name}: {time.perf_counter() - start:.1f}s", flush=True)
    same = sum(p.token_ids == n for p, n in zip(results["predict_images"], results["naive"]))
    lengths = [len(p.token_ids) for p in results["predict_images"]]
    print(f"  the same words from both: {same}/{len(paths)} captions (mean length {np.mean(lengths):.1f} words)")
    caption_times = interleaved(candidates, args.repeats, "captioning")

    # -- (b) an epoch from cached grids against the CNN in every batch ----------------------------
    from keras_attn_zoo.caption_training import CaptionBatches, FeatureCache
    from keras_attn_zoo.images import load_images

    start = time.perf_counter()
    grids, rows, left_out = FeatureCache(Path(scratch.name) / "features", "bench").load(paths, model, progress=False)
    cache_seconds = time.perf_counter() - start
    rng = np.random.default_rng(args.seed)
    pairs = [(row, [BOS_ID] + rng.integers(4, model.target_vocab_size, 12).tolist() + [EOS_ID])
             for row in range(len(rows)) for _ in range(args.captions_per_image)]
    batches = CaptionBatches(grids, pairs, batch_size=args.batch_size, shuffle=True, seed=args.seed)
    pixels = load_images([paths[r] for r in rows], size=model.image_size).pixels
    recomputed = RecomputedBatches(model, pixels, batches)
    model.compile()
    trainers = {
        "cached": lambda: model.fit(batches, epochs=1, verbose=0),
        "recompute": lambda: model.fit(recomputed, epochs=1, verbose=0),
    }
    for name, run in trainers.items():
        start = time.perf_counter()
        run()
        print(f"  warm-up epoch {name}: {time.perf_counter() - start:.1f}s", flush=True)
    train_times = interleaved(trainers, args.repeats, "training")
    scratch.cleanup()

    # -- Results ----------------------------------------------------------------------------------
    per_second = {n: statistics.median(len(paths) / t for t in caption_times[n]) for n in candidates}
    print("captions/sec (wall clock, greedy, batch {}): {}".format(
        args.batch_size, ", ".join(f"{n}={r:.1f}" for n, r in per_second.items())))
    epoch = {n: statistics.median(train_times[n]) for n in trainers}
    saved = epoch["recompute"] - epoch["cached"]
    print(f"epoch seconds ({len(pairs)} pairs, batch {args.batch_size}): "
          + ", ".join(f"{n}={s:.2f}" for n, s in epoch.items())
          + f"; making the cache once: {cache_seconds:.2f}s"
          + (f" (paid back after {cache_seconds / saved:.1f} epochs)" if saved > 0 else ""))
    print("headline (wall clock, median of per-repeat ratios):")
    print(f"predict_images/naive={median_ratio(caption_times, 'predict_images', 'naive'):.2f}")
    print(f"cached/recompute={median_ratio(train_times, 'cached', 'recompute'):.2f}")


if __name__ == "__main__":
    main()
