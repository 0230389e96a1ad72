"""The project's one image loader: Pillow in, uint8 HWC NumPy arrays out.

Every stage that touches image files goes through here so that decoding rules (mode → channels,
what counts as corrupt, how files are written) are the same everywhere.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from stylegan_exp.atomic import write_atomic

# Channels an image decodes to by default. Palette, CMYK and colour-space modes become RGB (or
# RGBA when they carry transparency); high-bit-depth single-band modes become grayscale.
_MODE_CHANNELS = {
    "1": 1,
    "L": 1,
    "I": 1,
    "F": 1,
    "I;16": 1,
    "I;16B": 1,
    "I;16L": 1,
    "I;16N": 1,
    "LA": 2,
    "La": 2,
    "RGB": 3,
    "P": 3,
    "CMYK": 3,
    "YCbCr": 3,
    "LAB": 3,
    "HSV": 3,
    "RGBA": 4,
    "RGBa": 4,
    "RGBX": 3,
    "PA": 4,
}
_CHANNEL_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
# What every folder scan (prepare's stages, the dataset tool, rank, invert) counts as an image file.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
# What encode_image and save_image write.
ENCODINGS = ("png", "jpeg")


WHITE = (255, 255, 255)
# EXIF orientations that swap width and height (transposed, rotated 90° or 270°).
_TRANSPOSING = (5, 6, 7, 8)
_EXIF_ORIENTATION = 0x0112
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


class ImageError(ValueError):
    """An image file that cannot be read or decoded; the message is one line naming the file."""


class ImageTooLargeError(ImageError):
    """An image with more pixels than allowed (also a decompression bomb), refused from its header."""


@dataclass(frozen=True)
class ImageInfo:
    """What the header says about an image, without decoding its pixels (sizes as displayed, i.e.
    after its EXIF orientation)."""

    path: Path
    width: int
    height: int
    channels: int
    format: str
    mode: str = ""
    orientation: int = 1


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _mode_channels(image: Image.Image) -> int:
    if image.mode == "P" and "transparency" in image.info:
        return 4
    return _MODE_CHANNELS.get(image.mode, len(image.getbands()))


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in _ALPHA_MODES or "transparency" in image.info


@contextmanager
def _open(
    source: str | os.PathLike | io.BytesIO, name: str, max_pixels: int | None
) -> Iterator[Image.Image]:
    """Image.open with our limits: more than `max_pixels` (or Pillow's decompression-bomb limit) is
    ImageTooLargeError, before any pixel is decoded."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # We apply our own limit.
        try:
            image = Image.open(source)
        except Image.DecompressionBombError as exc:
            raise ImageTooLargeError(f"{name}: too large ({_one_line(exc)})") from exc
    with image:
        if max_pixels is not None and image.width * image.height > max_pixels:
            raise ImageTooLargeError(
                f"{name}: too large ({image.width}x{image.height} = {image.width * image.height:,} pixels "
                f"> max_pixels {max_pixels:,})"
            )
        yield image


def _orientation(image: Image.Image) -> int:
    try:
        value = int(image.getexif().get(_EXIF_ORIENTATION, 1))
    except (TypeError, ValueError, OSError, SyntaxError):
        return 1  # A broken EXIF block is common in the wild; the pixels are still fine.
    return value if 1 <= value <= 8 else 1


def _upright(image: Image.Image) -> Image.Image:
    """The decoded pixels turned as the EXIF orientation says, so every stage sees what a viewer shows."""
    if _orientation(image) == 1:
        return image
    return ImageOps.exif_transpose(image)


def flatten(image: Image.Image, background: tuple[int, int, int] = WHITE) -> Image.Image:
    """An RGB image with transparency composited on `background`: the one way alpha is dropped, so
    every stage that decodes an image first gets the same pixels."""
    rgba = image.convert("RGBA")
    canvas = Image.new("RGB", rgba.size, tuple(background))
    return Image.composite(rgba.convert("RGB"), canvas, rgba.getchannel("A"))


def read_image_info(path: str | os.PathLike, max_pixels: int | None = None) -> ImageInfo:
    """Read size, channels and format from the header only (cheap enough to scan whole folders)."""
    path = Path(path)
    try:
        with _open(path, str(path), max_pixels) as image:
            orientation = _orientation(image)
            width, height = image.size
            if orientation in _TRANSPOSING:
                width, height = height, width
            return ImageInfo(
                path, width, height, _mode_channels(image), image.format or "", image.mode, orientation
            )
    except ImageTooLargeError:
        raise
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"{path}: cannot read image ({_one_line(exc)})") from exc


def decode_image(
    data: bytes,
    channels: int | None = None,
    *,
    name: str = "<bytes>",
    background: tuple[int, int, int] = WHITE,
    max_pixels: int | None = None,
) -> np.ndarray:
    """Fully decode encoded image bytes to uint8 HWC, upright; `name` is what error messages call the
    data. Converting away an alpha channel composites it on `background`."""
    if channels is not None and channels not in _CHANNEL_MODES:
        raise ValueError(f"channels must be one of {sorted(_CHANNEL_MODES)}, got {channels}")
    try:
        with _open(io.BytesIO(data), name, max_pixels) as image:
            image.load()  # Decode now: truncated files must fail here, not later in training.
            image = _upright(image)
            mode = _CHANNEL_MODES[channels or _mode_channels(image)]
            if _has_alpha(image) and mode in ("L", "RGB"):
                image = flatten(image, background)
            if image.mode != mode:
                image = image.convert(mode)
            array = np.asarray(image, dtype=np.uint8)
    except ImageTooLargeError:
        raise
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"{name}: cannot decode image ({_one_line(exc)})") from exc
    return array[:, :, None] if array.ndim == 2 else array


def load_image(
    path: str | os.PathLike,
    channels: int | None = None,
    *,
    background: tuple[int, int, int] = WHITE,
    max_pixels: int | None = None,
) -> np.ndarray:
    """Decode an image file to uint8 HWC; channels=1/3 converts to grayscale/RGB."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{path}: cannot read image ({_one_line(exc)})") from exc
    return decode_image(data, channels, name=str(path), background=background, max_pixels=max_pixels)


def image_format(name: str) -> str:
    """The one jpg/jpeg normaliser: "JPG", "jpeg" or ".jpg" → "jpeg"; other names lower-cased."""
    fmt = name.lower().removeprefix(".")
    return "jpeg" if fmt == "jpg" else fmt


def suffix_for(fmt: str) -> str:
    """The file suffix written for an encoding: .jpg for JPEG, .png for everything else."""
    return ".jpg" if image_format(fmt) == "jpeg" else ".png"


def resample(array: np.ndarray, width: int, height: int) -> np.ndarray:
    """The one Pillow-side resampler (Lanczos) for uint8 HW, HW1 or HWC arrays; tensors use
    nets.layers.downscale2d/upscale2d."""
    single = array.ndim == 3 and array.shape[2] == 1
    image = Image.fromarray(array[:, :, 0] if single else array)
    out = np.asarray(image.resize((width, height), Image.Resampling.LANCZOS))
    return out[:, :, None] if single else out


def encode_image(array: np.ndarray, fmt: str, jpeg_quality: int = 95) -> bytes:
    """Encode a uint8 HW1/HW3 (or HW) array as PNG or JPEG bytes."""
    array = np.asarray(array)
    if (
        array.dtype != np.uint8
        or array.ndim not in (2, 3)
        or (array.ndim == 3 and array.shape[2] not in (1, 3))
    ):
        raise ValueError(f"expected a uint8 HW, HW1 or HW3 array, got {array.dtype} {array.shape}")
    if image_format(fmt) not in ENCODINGS:
        raise ValueError(f"unsupported image format {fmt!r} (png or jpeg)")
    image = Image.fromarray(array[:, :, 0] if array.ndim == 3 and array.shape[2] == 1 else array)
    buffer = io.BytesIO()
    if image_format(fmt) == "png":
        image.save(buffer, format="PNG")
    else:
        image.save(buffer, format="JPEG", quality=jpeg_quality)
    return buffer.getvalue()


def save_image(array: np.ndarray, path: str | os.PathLike) -> None:
    """Write an image atomically (temp file in the same folder, then rename): never a half-written file."""
    path = Path(path)
    fmt = image_format(path.suffix)
    if fmt not in ENCODINGS:
        raise ImageError(f"{path}: unsupported image suffix (use .png, .jpg or .jpeg)")
    write_atomic(path, encode_image(array, fmt))


_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _to_srgb(image: Image.Image) -> Image.Image:
    """Apply an embedded ICC profile (CMYK, Adobe RGB, …) to get sRGB; without one, assume sRGB."""
    from PIL import ImageCms

    icc = image.info.get("icc_profile")
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            srgb = ImageCms.createProfile("sRGB")
            return ImageCms.profileToProfile(image, source, srgb, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # A broken profile is common in the wild; the plain conversion is the best guess.
    return image.convert("RGB")


def decode_srgb(
    data: bytes,
    background: tuple[int, int, int] = WHITE,
    *,
    name: str = "<bytes>",
    max_pixels: int | None = None,
) -> tuple[np.ndarray, ImageInfo]:
    """Decode to 8-bit sRGB RGB (HW3) whatever the file is: upright, ICC profiles honoured, CMYK
    converted, 16-bit scaled (not clipped), transparency composited on `background` (as decode_image
    does). Also returns the header info (mode, format) so callers can tell what the file was."""
    try:
        with _open(io.BytesIO(data), name, max_pixels) as image:
            image.load()
            info = ImageInfo(Path(name), image.width, image.height, _mode_channels(image),
                             image.format or "", image.mode, _orientation(image))
            image = _upright(image)
            alpha = None
            if _has_alpha(image):
                rgba = image.convert("RGBA")
                alpha = rgba.getchannel("A")
                image = rgba.convert("RGB") if image.mode in ("P", "PA") else image.convert(
                    "RGB" if image.mode in ("RGBA", "RGBa", "P") else "L")
            if image.mode in _SIXTEEN_BIT_MODES:
                wide = np.asarray(image, np.float64)
                image = Image.fromarray(np.clip(np.round(wide / 257.0), 0, 255).astype(np.uint8))
            elif image.mode == "F":
                image = Image.fromarray(np.clip(np.round(np.asarray(image) * 255.0), 0, 255).astype(np.uint8))
            rgb = _to_srgb(image)
            if alpha is not None:
                rgb = Image.composite(rgb, Image.new("RGB", rgb.size, tuple(background)), alpha)
            array = np.asarray(rgb, np.uint8)
    except ImageTooLargeError:
        raise
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"{name}: cannot decode image ({_one_line(exc)})") from exc
    return array, info
