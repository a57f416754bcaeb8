"""Decoding and fitting images at the edge (keras_attn_zoo.images), on the tiny files of fixtures/images/
(written by fixtures/images/make_images.py)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keras_attn_zoo.images import (ImageBox, ImageError, decode_image, fit_to_square, load_image, load_images,
                                   scale_for_backbone)

IMAGES = Path(__file__).parent / "fixtures" / "images"


def test_transparent_black_clip_art_is_composited_onto_white():
    rgb = decode_image(IMAGES / "rgba.png")
    assert rgb.dtype == np.uint8 and rgb.shape == (8, 8, 3)
    assert (rgb[7, 7] == 255).all()  # transparent black -> white, not black
    assert rgb[3, 3].tolist() == [255, 0, 0]  # the opaque red square stays red
    assert rgb[0, 0].tolist() == [127, 127, 127]  # black at alpha 128/255 over white: 255 * 127/255
    assert (decode_image(IMAGES / "la.png")[0, 0] == 255).all()
    assert decode_image(IMAGES / "la.png")[1, 1].tolist() == [50, 50, 50]
    palette = decode_image(IMAGES / "palette.png")
    assert palette[0, 0].tolist() == [255, 255, 255] and palette[1, 1].tolist() == [0, 255, 0]


def test_grayscale_16_bit_cmyk_and_animated_images_become_8_bit_rgb():
    assert decode_image(IMAGES / "gray.png")[0, 0].tolist() == [100, 100, 100]
    gray16 = decode_image(IMAGES / "gray16.png")
    assert gray16[0].tolist() == [[0, 0, 0], [128, 128, 128], [255, 255, 255], [0, 0, 0]]  # / 257, not clipped
    rgb16 = decode_image(IMAGES / "rgb16.png")
    assert rgb16[0].tolist() == [[255, 0, 0], [0, 128, 255]]
    cyan = decode_image(IMAGES / "cmyk.jpg")
    assert cyan.shape == (8, 8, 3) and np.abs(cyan.astype(int) - [0, 255, 255]).max() <= 3
    first_frame = decode_image(IMAGES / "animated.gif")
    assert (first_frame == [255, 0, 0]).all()  # red, the first of two frames
    jpeg = decode_image(IMAGES / "rgb.jpg")
    assert jpeg.shape == (8, 12, 3)
    assert np.abs(jpeg[4, 1].astype(int) - [255, 0, 0]).max() <= 6
    assert np.abs(jpeg[4, 10].astype(int) - [0, 0, 255]).max() <= 6


def test_aspect_ratio_is_kept_and_padding_is_white():
    square, box = load_image(IMAGES / "wide.png", size=20)  # 40x10 green
    assert square.shape == (20, 20, 3)
    assert box == ImageBox(top=7, left=0, height=5, width=20, original_height=10, original_width=40)
    assert (square[7:12] == [0, 200, 0]).all()
    assert (square[:7] == 255).all() and (square[12:] == 255).all()
    tall, tall_box = fit_to_square(np.zeros((30, 10, 3), np.uint8), size=9)
    assert (tall_box.top, tall_box.left, tall_box.height, tall_box.width) == (0, 3, 9, 3)
    assert (tall[:, 3:6] == 0).all() and (tall[:, :3] == 255).all() and (tall[:, 6:] == 255).all()


@pytest.mark.parametrize("file, message", [
    ("not_an_image.png", r"not_an_image\.png: not an image Pillow can read \(starts with b'This is '\)"),
    ("empty.png", r"empty\.png: empty file; expected an image"),
    ("truncated.png", r"truncated\.png: damaged or truncated PNG"),
    ("huge.png", r"huge\.png: more than max_pixels=50,000,000"),
    ("missing.png", r"missing\.png: no such file"),
])
def test_bad_files_give_one_line_naming_the_file(file, message):
    with pytest.raises(ImageError, match=message) as error:
        load_image(IMAGES / file)
    assert "\n" not in str(error.value)


def test_large_png_refused_before_decoding_and_large_jpeg_decoded_smaller(tmp_path):
    with pytest.raises(ImageError, match=r"wide\.png: 40x10 pixels is more than max_pixels=100; shrink it first"):
        decode_image(IMAGES / "wide.png", max_pixels=100)
    photo = np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    Image.fromarray(photo).save(tmp_path / "big.jpg")
    small = decode_image(tmp_path / "big.jpg", max_pixels=96 * 64 // 3)  # decoded at 1/2 by the JPEG DCT
    assert small.shape == (32, 48, 3)
    square, box = load_image(tmp_path / "big.jpg", size=24, max_pixels=96 * 64 // 3)
    assert (box.original_height, box.original_width) == (32, 48) and square.shape == (24, 24, 3)
    assert decode_image(tmp_path / "big.jpg", max_pixels=96 * 64 // 10).shape == (16, 24, 3)  # at 1/4


def test_a_bad_image_does_not_stop_the_others():
    items = [IMAGES / "rgba.png", IMAGES / "empty.png", IMAGES / "gray.png", IMAGES / "not_an_image.png"]
    loaded = load_images(items, size=16)
    assert loaded.pixels.shape == (2, 16, 16, 3) and loaded.index == [0, 2]
    assert [position for position, _ in loaded.errors] == [1, 3]
    assert "empty.png" in str(loaded.errors[0][1]) and "not_an_image.png" in str(loaded.errors[1][1])
    assert load_images([IMAGES / "empty.png"], size=16).pixels.shape == (0, 16, 16, 3)


def test_arrays_pil_images_and_bytes():
    assert (decode_image(np.full((3, 4), 7, np.uint8)) == 7).all()
    assert decode_image(np.full((2, 2, 4), [0, 0, 0, 0], np.uint8)).tolist() == [[[255] * 3] * 2] * 2
    assert decode_image(np.full((2, 2), 65535, np.uint16))[0, 0].tolist() == [255, 255, 255]
    with pytest.raises(ImageError, match=r"<ndarray>: received an array of float32; expected uint8"):
        decode_image(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ImageError, match=r"received an array of shape \(2, 2, 5\)"):
        decode_image(np.zeros((2, 2, 5), np.uint8))
    with Image.open(IMAGES / "palette.png") as image:
        assert decode_image(image)[1, 1].tolist() == [0, 255, 0]
    assert decode_image((IMAGES / "gray.png").read_bytes()).shape == (4, 6, 3)
    with pytest.raises(ImageError, match=r"<int>: received a int; expected a path"):
        decode_image(3)


def test_scaling_matches_the_backbone():
    scaled = scale_for_backbone(np.array([0, 127, 255], np.uint8))
    np.testing.assert_allclose(scaled, [-127 / 128, 0.0, 1.0], atol=1e-7)
    from keras_attn_zoo.encoders.efficientnet_lite import MEAN, STDDEV

    assert (MEAN, STDDEV) == (127.0, 128.0)
    with pytest.raises(ValueError, match=r"Received backbone='resnet'; expected one of 'efficientnet_lite0'"):
        scale_for_backbone(np.zeros(1), "resnet")
