"""Stage 5, resize: every image to one square power-of-two resolution, or to `aspect` (width:height, e.g.
1:2) with that resolution as its short side.

Images of another shape are centre-cropped or padded (`policy`); downscaling is Lanczos; upscaling is
Lanczos, waifu2x (data/waifu2x.py) or an external upscaler run from a command template with {input},
{output} and {scale}, whose result is then brought to the exact size with Lanczos.
CLI: ``python -m stylegan_exp.data.resize SRC DST [--resolution 256] [--policy crop|pad] …``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shlex
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

import numpy as np

from stylegan_exp.aspect import Aspect, AspectError, parse_aspect
from stylegan_exp.data.images import ImageError, encode_image, load_image, resample, save_image
from stylegan_exp.data.manifest import (
    Outcome,
    StageError,
    StageResult,
    input_tags,
    output_name,
    resolve_inputs,
    run_stage,
    stage_cli,
)
from stylegan_exp.data.prepare_config import ResizeConfig, RunOptions
from stylegan_exp.data.settings import stage_settings
from stylegan_exp.resolution import MIN_RESOLUTION, is_resolution

POLICIES = ("crop", "pad")
UPSCALERS = ("lanczos", "waifu2x")


def make_square(rgb: np.ndarray, policy: str, background: list[int]) -> np.ndarray:
    height, width = rgb.shape[:2]
    if height == width:
        return rgb
    if policy == "crop":
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        return rgb[top : top + side, left : left + side]
    side = max(height, width)
    out = np.empty((side, side, 3), np.uint8)
    out[:] = np.asarray(background, np.uint8)
    top, left = (side - height) // 2, (side - width) // 2
    out[top : top + height, left : left + width] = rgb
    return out


def make_aspect(rgb: np.ndarray, policy: str, background: list[int], aspect: Aspect) -> np.ndarray:
    """The largest centred `aspect` rectangle inside the image (crop), or the smallest around it with the
    image centred on `background` (pad, a letterbox)."""
    height, width = rgb.shape[:2]
    if policy == "crop":
        unit = max(1, min(width // aspect.width, height // aspect.height))
    else:
        unit = max(-(-width // aspect.width), -(-height // aspect.height))
    out_w, out_h = unit * aspect.width, unit * aspect.height
    if policy == "crop":
        top, left = (height - out_h) // 2, (width - out_w) // 2
        return rgb[top : top + out_h, left : left + out_w]
    out = np.empty((out_h, out_w, 3), np.uint8)
    out[:] = np.asarray(background, np.uint8)
    top, left = (out_h - height) // 2, (out_w - width) // 2
    out[top : top + height, left : left + width] = rgb
    return out


def _fitted(rgb: np.ndarray, cfg: ResizeConfig) -> np.ndarray:
    aspect = parse_aspect(cfg.aspect, "resize.aspect")
    if aspect.square:
        return make_square(rgb, cfg.policy, cfg.background)
    return make_aspect(rgb, cfg.policy, cfg.background, aspect)


def _external_upscale(rgb: np.ndarray, command: str, scale: int) -> np.ndarray:
    with tempfile.TemporaryDirectory(prefix="upscale-") as tmp:
        src, dst = Path(tmp) / "in.png", Path(tmp) / "out.png"
        save_image(rgb, src)
        argv = [part.format(input=src, output=dst, scale=scale) for part in shlex.split(command)]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not dst.is_file():
            tail = " ".join((done.stderr or done.stdout).split())[-200:]
            raise ImageError(f"upscaler {argv[0]} failed with exit code {done.returncode}: {tail}")
        return load_image(dst, channels=3)


def resize_image(rgb: np.ndarray, cfg: ResizeConfig) -> np.ndarray:
    """Square (or `aspect`), then scale to cfg.resolution (see the module docstring)."""
    square = _fitted(rgb, cfg)
    side = min(square.shape[:2])
    factor = 2 ** math.ceil(math.log2(cfg.resolution / side)) if side < cfg.resolution else 1
    if factor > 1 and cfg.upscale_command:
        square = _external_upscale(square, cfg.upscale_command, factor)
    elif factor > 1 and cfg.upscaler == "waifu2x":
        from stylegan_exp.data import waifu2x

        square = waifu2x.upscale(square, factor, cfg)
    size = parse_aspect(cfg.aspect).size(cfg.resolution)
    if square.shape[1::-1] == size:
        return np.ascontiguousarray(square)
    return resample(square, *size)


def unused_settings(cfg: ResizeConfig) -> list[str]:
    """Fields that cannot change the outputs: waifu2x's threads, and its every knob when it does not run."""
    waifu2x = [f.name for f in dataclasses.fields(cfg) if f.name.startswith("waifu2x_")]
    square = ["aspect"] if parse_aspect(cfg.aspect).square else []  # squares' settings as before
    return square + (waifu2x if cfg.upscale_command or cfg.upscaler != "waifu2x" else ["waifu2x_threads"])


def resize_file(key: str, path: Path, cfg: ResizeConfig) -> list[Outcome]:
    rgb = load_image(path, channels=3)
    if parse_aspect(cfg.aspect).square:
        side = min(rgb.shape[:2]) if cfg.policy == "crop" else max(rgb.shape[:2])
    else:
        side = min(_fitted(rgb, cfg).shape[:2])
    if side * cfg.max_upscale < cfg.resolution:
        return [Outcome(None, False, "too-small", extra={"size": [rgb.shape[1], rgb.shape[0]]})]
    try:
        out = resize_image(rgb, cfg)
    except ImageError as exc:
        return [Outcome(None, False, "upscale-failed", extra={"error": str(exc)})]
    reason = "resized" if side != cfg.resolution else "as-is"
    return [Outcome(output_name(key, cfg.image_format), True, reason, encode_image(out, cfg.image_format))]


def run(
    src: str | os.PathLike, dst: str | os.PathLike, cfg: ResizeConfig, options: RunOptions
) -> StageResult:
    """Resize SRC's images into DST."""
    if not is_resolution(cfg.resolution):
        raise StageError(
            f"resize resolution must be a power of two >= {MIN_RESOLUTION}, got {cfg.resolution}"
        )
    try:
        parse_aspect(cfg.aspect, "resize.aspect")
    except AspectError as exc:
        raise StageError(str(exc)) from None
    if cfg.policy not in POLICIES:
        raise StageError(f"resize policy must be one of {', '.join(POLICIES)}, got {cfg.policy!r}")
    if cfg.upscaler not in UPSCALERS:
        raise StageError(f"resize upscaler must be one of {', '.join(UPSCALERS)}, got {cfg.upscaler!r}")
    if cfg.upscale_command and "{input}" not in cfg.upscale_command:
        raise StageError(f"upscale_command needs {{input}} and {{output}}: {cfg.upscale_command!r}")
    if cfg.upscaler == "waifu2x" and not cfg.upscale_command:
        from stylegan_exp.data import waifu2x

        waifu2x.check(cfg)
    return run_stage("resize", resolve_inputs(src), dst, partial(resize_file, cfg=cfg), options,
                     settings=stage_settings("resize", cfg, src, unused_settings(cfg)), tags=input_tags(src))


def main(argv: list[str] | None = None) -> int:
    return stage_cli("resize", ResizeConfig, run, argv, __doc__.split("\n")[0])


if __name__ == "__main__":
    sys.exit(main())
