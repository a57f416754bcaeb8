"""Images at the edge: decode a file (or PIL image, or array) and fit it into a square, padded.

    load_image("cat.png", size=224)     -> uint8 (224, 224, 3) RGB, plus where the picture lies
    load_images([...], size=224)        -> the images that loaded, and one error line per one that did not

What happens to every image, in order:

1. Decoding with Pillow (the decoder `keras.utils.load_img` uses, installed with matplotlib).
   Pillow reads the size from the header before decoding any pixel, so an image of more than
   `max_pixels` is never fully decoded: a JPEG is decoded at 1/2, 1/4 or 1/8 scale by its own
   DCT (`Image.draft`), anything else is refused with one line (a 20,990x29,700 openclipart PNG
   would need 2.5 GB). GIFs and other animations give their first frame.
2. Colour: grayscale, palette, CMYK and 16-bit images become 8-bit RGB (16-bit by value / 257,
   not by Pillow's clipping); transparency (RGBA, LA, palette or grayscale with a transparent
   colour) is composited onto white, because clip art drawn in black on a transparent background
   would otherwise vanish into black.
3. Size: scaled so the longer side is `size` (aspect ratio kept, bilinear with antialiasing), then
   centred on a white `size` x `size` square. `ImageBox` says where the picture lies in it, so
   attention over the square can be drawn over the original image.

Pixels stay RGB uint8 in [0, 255]: scaling for the network happens inside the backbone
(`efficientnet_lite0(include_preprocessing=True)` computes (x - 127) / 128), so one array can be
shown, cached and fed. `scale_for_backbone` does the same scaling outside a model.

Every failure is an `ImageError` (a `DataError`) whose message is one line that names the file.
"""

import io
import os
import warnings
from dataclasses import dataclass

import numpy as np

from keras_attn_zoo.errors import DataError

DEFAULT_SIZE = 224
DEFAULT_MAX_PIXELS = 50_000_000  # ~200 MB as RGBA while decoding
WHITE = 255
# The backbones' input scaling, (x - mean) / std on RGB in [0, 255].
BACKBONE_SCALING = {"efficientnet_lite0": (127.0, 128.0)}


class ImageError(DataError):
    """A file or object that cannot be turned into an image; the message is one line naming it."""


@dataclass(frozen=True)
class ImageBox:
    """Where the resized picture lies in the padded square, and the original size (pixels)."""

    top: int
    left: int
    height: int
    width: int
    original_height: int
    original_width: int


def _pil():
    from PIL import Image, UnidentifiedImageError

    return Image, UnidentifiedImageError


def _name(item):
    if isinstance(item, (str, os.PathLike)):
        return os.fspath(item)
    return f"<{type(item).__name__}>"


def decode_image(item, max_pixels=DEFAULT_MAX_PIXELS, name=None):
    """RGB uint8 (H, W, 3) from a path, bytes, a PIL image or an array; transparency onto white.

    Arrays must be uint8 or uint16 (H, W), (H, W, 1), (H, W, 3) or (H, W, 4): a float array is
    refused rather than guessed to be in [0, 1] or [0, 255].
    """
    name = name or _name(item)
    if isinstance(item, np.ndarray):
        return _from_array(item, name)
    Image, UnidentifiedImageError = _pil()
    if isinstance(item, Image.Image):
        image = item
    else:
        if isinstance(item, (bytes, bytearray)):
            data = bytes(item)
        elif isinstance(item, (str, os.PathLike)):
            try:
                with open(item, "rb") as file:
                    data = file.read()
            except FileNotFoundError:
                raise ImageError(f"{name}: no such file") from None
            except IsADirectoryError:
                raise ImageError(f"{name}: is a folder; expected an image file") from None
            except OSError as error:
                raise ImageError(f"{name}: cannot be read ({error.strerror or error})") from None
        else:
            raise ImageError(f"{name}: received a {type(item).__name__}; expected a path, bytes, a PIL image "
                             "or a uint8 array")
        if not data:
            raise ImageError(f"{name}: empty file; expected an image (PNG, JPEG, GIF, ...)")
        try:
            with warnings.catch_warnings():  # sizes are checked against max_pixels below
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as error:  # over twice Pillow's own limit (~179M pixels)
            raise ImageError(f"{name}: more than max_pixels={max_pixels:,} ({error}); shrink it first") from None
        except UnidentifiedImageError:
            raise ImageError(f"{name}: not an image Pillow can read (starts with {data[:8]!r}); "
                             "expected PNG, JPEG, GIF, BMP, WebP or TIFF") from None
    try:
        return _to_rgb(image, max_pixels, name)
    except ImageError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError) as error:  # Pillow's errors for broken files
        message = " ".join(str(error).split()) or type(error).__name__
        raise ImageError(f"{name}: damaged or truncated {image.format or 'image'} ({message})") from None


def _to_rgb(image, max_pixels, name):
    width, height = image.size
    if width * height > max_pixels:
        if image.format == "JPEG":
            # Decode at the largest DCT scale (1/2, 1/4 or 1/8) that fits in max_pixels.
            factor = 2
            while factor < 8 and (width // factor) * (height // factor) > max_pixels:
                factor *= 2
            image.draft("RGB", (width // factor, height // factor))
            width, height = image.size
        if width * height > max_pixels:
            raise ImageError(f"{name}: {width}x{height} pixels is more than max_pixels={max_pixels:,}; "
                             "shrink it first (only JPEGs are decoded at reduced size)")
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)
    image.load()
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        values = np.asarray(image)
        if mode == "I" and values.max(initial=0) <= 255:
            gray = values.astype(np.uint8)
        else:
            gray = np.round(values.astype(np.float64) / 257.0).clip(0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if mode == "F":
        raise ImageError(f"{name}: a floating-point image (mode F); expected 8- or 16-bit pixels")
    has_alpha = mode in ("RGBA", "LA", "La", "RGBa", "PA") or "transparency" in image.info
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
        return _composite_on_white(rgba[..., :3], rgba[..., 3:] / 255.0)
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def _composite_on_white(rgb, alpha):
    """rgb * alpha + white * (1 - alpha), rounded to uint8 (alpha in [0, 1], shape (H, W, 1))."""
    return np.round(rgb * alpha + WHITE * (1.0 - alpha)).clip(0, 255).astype(np.uint8)


def _from_array(array, name):
    if array.dtype not in (np.uint8, np.uint16):
        raise ImageError(f"{name}: received an array of {array.dtype}; expected uint8 (or uint16) pixels")
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)) or 0 in array.shape:
        raise ImageError(f"{name}: received an array of shape {array.shape}; expected (H, W), (H, W, 1), "
                         "(H, W, 3) or (H, W, 4)")
    if array.dtype == np.uint16:
        array = np.round(array / 257.0).astype(np.uint8)
    if array.ndim == 2:
        return np.repeat(array[..., None], 3, axis=-1)
    if array.shape[-1] == 4:
        return _composite_on_white(array[..., :3].astype(np.float32), array[..., 3:] / 255.0)
    return np.ascontiguousarray(array)


def fit_to_square(rgb, size=DEFAULT_SIZE):
    """Scale RGB uint8 (H, W, 3) so its longer side is `size`, centre it on white: (size, size, 3), box."""
    Image, _ = _pil()
    height, width = rgb.shape[:2]
    scale = size / max(height, width)
    new_height, new_width = max(1, round(height * scale)), max(1, round(width * scale))
    resized = Image.fromarray(rgb).resize((new_width, new_height), Image.BILINEAR, reducing_gap=None)
    square = np.full((size, size, 3), WHITE, np.uint8)
    top, left = (size - new_height) // 2, (size - new_width) // 2
    square[top:top + new_height, left:left + new_width] = np.asarray(resized)
    return square, ImageBox(top, left, new_height, new_width, height, width)


def load_image(item, size=DEFAULT_SIZE, max_pixels=DEFAULT_MAX_PIXELS, name=None):
    """Decode `item` and fit it into a white `size` x `size` square: (uint8 (size, size, 3), ImageBox).

    Raises:
        ImageError: one line naming the file: missing, empty, not an image, truncated, too large.
    """
    return fit_to_square(decode_image(item, max_pixels=max_pixels, name=name), size)


@dataclass
class LoadedImages:
    """The result of `load_images`: `pixels[i]` is item `index[i]`; `errors` holds one line per failure."""

    pixels: np.ndarray
    index: list
    boxes: list
    errors: list


def load_images(items, size=DEFAULT_SIZE, max_pixels=DEFAULT_MAX_PIXELS):
    """Load many images; a bad one becomes an error line and the others still load.

    Returns `LoadedImages` with `pixels` uint8 (n_ok, size, size, 3), `index` (the position of each
    loaded image in `items`), `boxes` and `errors` (`(position, ImageError)` pairs).
    """
    pixels, index, boxes, errors = [], [], [], []
    for position, item in enumerate(items):
        try:
            square, box = load_image(item, size=size, max_pixels=max_pixels)
        except ImageError as error:
            errors.append((position, error))
            continue
        pixels.append(square)
        index.append(position)
        boxes.append(box)
    stacked = np.stack(pixels) if pixels else np.zeros((0, size, size, 3), np.uint8)
    return LoadedImages(stacked, index, boxes, errors)


def scale_for_backbone(pixels, backbone="efficientnet_lite0"):
    """float32 (x - mean) / std for a backbone built without its own preprocessing."""
    if backbone not in BACKBONE_SCALING:
        raise ValueError(f"Received backbone={backbone!r}; expected one of {', '.join(map(repr, BACKBONE_SCALING))}")
    mean, std = BACKBONE_SCALING[backbone]
    return (np.asarray(pixels, np.float32) - mean) / std
