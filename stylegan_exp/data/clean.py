"""Stage 3, clean: drop what would poison training, each with a named reason, and convert the rest
to 8-bit sRGB RGB (upright, transparency composited) so later stages and the packer see one kind of
image.

Reasons: empty, unreadable, truncated, png-crc, too-large (from the header, before decoding),
too-small, monochrome, grayscale, photo (with drop_photos), duplicate (the same decoded pixels as an
earlier kept image, in input order, so the result never depends on timing); and, from the driver,
broken-link and missing. CLI: ``python -m stylegan_exp.data.clean SRC DST [--min-size 64] …``.
"""

from __future__ import annotations

import hashlib
import os
import struct
import sys
import zlib
from functools import partial
from pathlib import Path

import numpy as np

from stylegan_exp.data.crop import detector
from stylegan_exp.data.images import ImageError, ImageTooLargeError, decode_srgb, encode_image, resample
from stylegan_exp.data.manifest import (
    Outcome,
    StageError,
    StageResult,
    error_text,
    input_tags,
    output_name,
    resolve_inputs,
    run_stage,
    stage_cli,
)
from stylegan_exp.data.prepare_config import CleanConfig, RunOptions
from stylegan_exp.data.settings import stage_settings

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Pixel statistics are taken on every k-th row and column of images above this many pixels: the same
# spread (noise included) at bounded memory.
_STATS_PIXELS = 1 << 20
_PHOTO_SCAN = 512  # Longer side of the copy the human-face cascade scans.
_EDGE_SIZE = 64  # Side of the copy whose strong edges are counted.
_STRONG_EDGE = 40.0  # Luminance step (0-255) of a drawn outline between neighbouring pixels.


def png_crc_error(data: bytes) -> str | None:
    """The first chunk whose CRC does not match (Pillow does not check IDAT CRCs), or None."""
    if not data.startswith(_PNG_SIGNATURE):
        return None
    pos = len(_PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 8 + length
        if end + 4 > len(data):
            return None  # Truncation, reported as such by the decoder.
        (crc,) = struct.unpack(">I", data[end : end + 4])
        if zlib.crc32(data[pos + 4 : end]) != crc:
            return kind.decode("latin-1")
        if kind == b"IEND":
            return None
        pos = end + 4
    return None


def is_grayscale(rgb: np.ndarray, tolerance: float) -> bool:
    """Equal channels up to `tolerance` (mean absolute difference), as JPEG chroma noise allows."""
    r, g, b = (rgb[:, :, i].astype(np.int16) for i in range(3))
    return float(np.mean(np.abs(r - g)) + np.mean(np.abs(g - b))) / 2 <= tolerance


def is_monochrome(rgb: np.ndarray, threshold: float) -> bool:
    """One colour of any hue: every channel's spread over the image is below `threshold` (the spread
    across channels says nothing: a solid orange has a large one)."""
    return float(rgb.reshape(-1, 3).std(axis=0).max()) < threshold


def _stats_sample(rgb: np.ndarray) -> np.ndarray:
    step = max(1, int(np.ceil(np.sqrt(rgb.shape[0] * rgb.shape[1] / _STATS_PIXELS))))
    return rgb[::step, ::step]


def edge_share(rgb: np.ndarray) -> float:
    """Share of the pixels of a 64x64 copy whose luminance steps by more than a drawn outline does:
    high for illustrations (inked lines), low for photographs."""
    gray = resample(rgb, _EDGE_SIZE, _EDGE_SIZE).astype(np.float32).mean(axis=2)
    gx, gy = np.diff(gray, axis=1)[:-1], np.diff(gray, axis=0)[:, :-1]
    return float((np.hypot(gx, gy) > _STRONG_EDGE).mean())


def human_faces(rgb: np.ndarray, cfg: CleanConfig) -> int:
    """How many human faces all of the photo cascades find (the fewest of their counts), each at least
    `photo_min_face` of the shorter side, on a copy whose longer side is at most 512 px."""
    import cv2

    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    scale = _PHOTO_SCAN / max(gray.shape)
    if scale < 1:
        size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    side = max(20, int(min(gray.shape) * cfg.photo_min_face))
    gray = cv2.equalizeHist(gray)
    counts = [
        len(photo_detector(name).detectMultiScale(
            gray, scaleFactor=1.1, minNeighbors=cfg.photo_min_neighbors, minSize=(side, side)
        ))
        for name in cfg.photo_cascades
    ]
    return min(counts, default=0)


def photo_detector(name: str):
    """The human-face cascade: a file name under OpenCV's bundled cv2.data.haarcascades, or a path."""
    import cv2

    path = Path(name) if Path(name).is_file() else Path(cv2.data.haarcascades) / name
    if not path.is_file():
        raise StageError(f"photo cascade {name} is neither a file nor one of OpenCV's bundled cascades")
    return detector(str(path))


def is_photo(rgb: np.ndarray, cfg: CleanConfig) -> dict | None:
    """Why an image looks like a photograph of a real person (a human face and few drawn edges), or None."""
    edges = edge_share(rgb)
    if edges >= cfg.photo_max_edges:
        return None
    faces = human_faces(rgb, cfg)
    return {"faces": faces, "edges": round(edges, 4)} if faces else None


def check_file(key: str, path: Path, cfg: CleanConfig) -> list[Outcome]:
    """Decide one file on its own; exact duplicates are decided later, in order."""
    data = path.read_bytes()
    if not data:
        return [Outcome(None, False, "empty")]
    crc = png_crc_error(data)
    if crc is not None:
        return [Outcome(None, False, "png-crc", extra={"chunk": crc})]
    try:
        rgb, info = decode_srgb(data, tuple(cfg.background), name=path.name, max_pixels=cfg.max_pixels)
    except ImageTooLargeError as exc:
        return [Outcome(None, False, "too-large", extra={"error": error_text(exc)})]
    except ImageError as exc:
        message = error_text(exc)
        reason = "truncated" if "truncated" in message or "end of file" in message else "unreadable"
        return [Outcome(None, False, reason, extra={"error": message})]
    height, width = rgb.shape[:2]
    if min(height, width) < cfg.min_size:
        return [Outcome(None, False, "too-small", extra={"size": [width, height]})]
    sample = _stats_sample(rgb)
    if is_monochrome(sample, cfg.monochrome_std):
        return [Outcome(None, False, "monochrome")]
    if cfg.drop_grayscale and (info.channels in (1, 2) or is_grayscale(sample, cfg.gray_tolerance)):
        return [Outcome(None, False, "grayscale", extra={"mode": info.mode})]
    if cfg.drop_photos and (photo := is_photo(rgb, cfg)) is not None:
        return [Outcome(None, False, "photo", extra=photo)]
    digest = hashlib.sha256(np.ascontiguousarray(rgb).data)
    digest.update(struct.pack(">II", width, height))
    digest = digest.hexdigest()
    return [Outcome(None, True, "ok", encode_image(rgb, cfg.image_format), {"pixels": digest})]


class _Duplicates:
    """Remembers the pixel digests of kept images (those of earlier runs read from the manifest)."""

    def __init__(self, cfg: CleanConfig) -> None:
        self.cfg = cfg
        self.seen: dict[str, str] | None = None

    def __call__(self, key: str, outcomes: list[Outcome], entries: list[dict]) -> list[Outcome]:
        if self.seen is None:
            self.seen = {e["pixels"]: e["source"] for e in entries if e["kept"]}
        first = outcomes[0]
        if not first.kept:
            return outcomes
        digest = first.extra["pixels"]
        if digest in self.seen:
            return [Outcome(None, False, "duplicate", extra={"of": self.seen[digest]})]
        self.seen[digest] = key
        first.output = output_name(key, self.cfg.image_format)
        return [first]


def run(src: str | os.PathLike, dst: str | os.PathLike, cfg: CleanConfig, options: RunOptions) -> StageResult:
    """Clean SRC into DST (see the module docstring)."""
    for name in cfg.photo_cascades if cfg.drop_photos else []:
        photo_detector(name)  # Fail on a bad cascade now, not in every worker.
    items = resolve_inputs(src)
    return run_stage("clean", items, dst, partial(check_file, cfg=cfg), options,
                     settings=stage_settings("clean", cfg, src), decide=_Duplicates(cfg),
                     tags=input_tags(src))


def main(argv: list[str] | None = None) -> int:
    return stage_cli("clean", CleanConfig, run, argv, __doc__.split("\n")[0])


if __name__ == "__main__":
    sys.exit(main())
