"""Stage 3, clean: drop what would poison training, each with a named reason, and convert the rest
to 8-bit sRGB RGB so later stages and the packer see one kind of image.

Reasons: empty, unreadable, truncated, png-crc, too-small, monochrome, grayscale, duplicate (the
same decoded pixels as an earlier kept image, in input order, so the result never depends on
timing). CLI: ``python -m stylegan_exp.data.clean SRC DST [--min-size 64] …``.
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

from stylegan_exp.data.images import ImageError, decode_srgb, encode_image
from stylegan_exp.data.manifest import (
    Outcome,
    StageResult,
    error_text,
    output_name,
    resolve_inputs,
    run_stage,
    stage_cli,
)
from stylegan_exp.data.prepare_config import CleanConfig, RunOptions

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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


def check_file(key: str, path: Path, cfg: CleanConfig) -> list[Outcome]:
    """Decide one file on its own; exact duplicates are decided later, in order."""
    data = path.read_bytes()
    if not data:
        return [Outcome(None, False, "empty")]
    crc = png_crc_error(data)
    if crc is not None:
        return [Outcome(None, False, "png-crc", extra={"chunk": crc})]
    try:
        rgb, info = decode_srgb(data, tuple(cfg.background), name=path.name)
    except ImageError as exc:
        message = error_text(exc)
        reason = "truncated" if "truncated" in message or "end of file" in message else "unreadable"
        return [Outcome(None, False, reason, extra={"error": message})]
    height, width = rgb.shape[:2]
    if min(height, width) < cfg.min_size:
        return [Outcome(None, False, "too-small", extra={"size": [width, height]})]
    if float(rgb.std()) < cfg.monochrome_std:
        return [Outcome(None, False, "monochrome")]
    if cfg.drop_grayscale and (info.channels in (1, 2) or is_grayscale(rgb, cfg.gray_tolerance)):
        return [Outcome(None, False, "grayscale", extra={"mode": info.mode})]
    digest = hashlib.sha256(rgb.tobytes() + struct.pack(">II", width, height)).hexdigest()
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
    items = resolve_inputs(src)
    return run_stage("clean", items, dst, partial(check_file, cfg=cfg), options, decide=_Duplicates(cfg))


def main(argv: list[str] | None = None) -> int:
    return stage_cli("clean", CleanConfig, run, argv, __doc__.split("\n")[0])


if __name__ == "__main__":
    sys.exit(main())
