"""Images as people have them (data/transforms.pil_to_image, data/sources.folder_source): each
PIL mode decoded to the pixels it means, checked against the 8-bit RGB original."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lightning_extremal.data.sources import folder_source
from lightning_extremal.data.transforms import read_image

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (12, 20, 3), dtype=np.uint8)  # H×W×3, not square
GRAY = RNG.integers(0, 256, (12, 20), dtype=np.uint8)


def _expected(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1).float() / 255


def test_a_16_bit_grayscale_png_is_its_8_bit_version_not_white(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(GRAY.astype(np.uint16) * 257).save(path)  # 0…65535
    assert Image.open(path).mode.startswith("I")
    decoded = read_image(path)
    expected = _expected(np.repeat(GRAY[..., None], 3, axis=2))
    torch.testing.assert_close(decoded, expected, atol=1 / 255, rtol=0)


@pytest.mark.parametrize("mode", ["L", "1", "P", "CMYK"])
def test_grayscale_bilevel_palette_and_cmyk_decode_to_their_rgb(tmp_path, mode):
    few = (RGB // 128 * 255).astype(np.uint8)  # 8 colours: a palette holds them exactly
    image = Image.fromarray(GRAY if mode in ("L", "1") else few)
    converted = image.convert(mode)
    path = tmp_path / f"image.{'tif' if mode == 'CMYK' else 'png'}"
    converted.save(path)
    expected = np.asarray(converted.convert("L").convert("RGB")) if mode in ("L", "1") else few
    torch.testing.assert_close(read_image(path), _expected(expected), atol=1e-6, rtol=0)


def test_transparent_pixels_are_composited_on_white_with_a_warning(tmp_path):
    alpha = np.full((12, 20), 255, dtype=np.uint8)
    alpha[:, :10] = 0  # left half fully transparent
    alpha[:6, 10:] = 128  # a half-transparent corner
    path = tmp_path / "cutout.png"
    Image.fromarray(np.dstack([RGB, alpha])).save(path)
    with pytest.warns(UserWarning, match=r"cutout\.png has transparent pixels; .* white"):
        decoded = read_image(path)
    a = torch.from_numpy(alpha).float() / 255
    expected = _expected(RGB) * a + (1 - a)
    torch.testing.assert_close(decoded, expected, atol=1 / 255, rtol=0)
    opaque = tmp_path / "opaque.png"
    Image.fromarray(np.dstack([RGB, np.full((12, 20), 255, np.uint8)])).save(opaque)
    torch.testing.assert_close(read_image(opaque), _expected(RGB))  # no warning: nothing hidden


def test_exif_orientation_is_applied_and_the_source_reports_the_shown_size(tmp_path):
    image = Image.fromarray(RGB)  # stored 20 wide × 12 high
    exif = image.getexif()
    exif[0x0112] = 6  # shown rotated 90° clockwise: 12 wide × 20 high
    image.save(tmp_path / "phone.png", exif=exif)
    decoded = read_image(tmp_path / "phone.png")
    expected = _expected(np.ascontiguousarray(np.rot90(RGB, k=-1)))
    torch.testing.assert_close(decoded, expected)
    source = folder_source(str(tmp_path), None, False)
    assert source.shapes == [(3, 20, 12)] and tuple(source.load(0).shape) == (3, 20, 12)
