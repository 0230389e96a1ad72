"""Stage 6 (optional), augment: for small single-character sets, `copies` extra variants of each
image with colour shifts, contrast, sharpening or blur and small crops. No flips: training mirrors.

Each image's random draws are seeded by its name, so reruns and shards produce the same files.
CLI: ``python -m stylegan_exp.data.augment SRC DST --copies 4 [--seed 0] …``.
"""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from stylegan_exp.data.images import encode_image, load_image, resample
from stylegan_exp.data.manifest import (
    Outcome,
    StageError,
    StageResult,
    input_tags,
    output_name,
    resolve_inputs,
    run_stage,
    stable_hash,
    stage_cli,
)
from stylegan_exp.data.prepare_config import OfflineAugmentConfig, RunOptions
from stylegan_exp.data.settings import stage_settings


def augment_image(rgb: np.ndarray, rng: np.random.Generator, cfg: OfflineAugmentConfig) -> np.ndarray:
    """One random variant, the same size as the input."""
    height, width = rgb.shape[:2]
    if cfg.max_crop > 0:
        frac = rng.uniform(0, cfg.max_crop)
        cw, ch = round(width * (1 - frac)), round(height * (1 - frac))
        left, top = int(rng.integers(0, width - cw + 1)), int(rng.integers(0, height - ch + 1))
        rgb = resample(rgb[top : top + ch, left : left + cw], width, height)
    image = Image.fromarray(rgb)
    image = ImageEnhance.Contrast(image).enhance(1 + rng.uniform(-cfg.contrast, cfg.contrast))
    if rng.random() < cfg.sharpen_prob:
        image = image.filter(
            ImageFilter.UnsharpMask(radius=2, percent=int(rng.integers(50, 150)), threshold=2)
        )
    elif rng.random() < cfg.blur_prob:
        image = image.filter(ImageFilter.GaussianBlur(radius=rng.uniform(0.3, 1.0)))
    gains = 1 + rng.uniform(-cfg.color_shift, cfg.color_shift, size=3)
    shifted = np.asarray(image, np.float32) * gains[None, None, :]
    return np.clip(np.round(shifted), 0, 255).astype(np.uint8)


def augment_file(key: str, path: Path, cfg: OfflineAugmentConfig) -> list[Outcome]:
    rgb = load_image(path, channels=3)
    rng = np.random.default_rng([cfg.seed, stable_hash(key) & 0xFFFFFFFF])
    original = encode_image(rgb, cfg.image_format)
    outcomes = [Outcome(output_name(key, cfg.image_format), True, "original", original)]
    for i in range(cfg.copies):
        data = encode_image(augment_image(rgb, rng, cfg), cfg.image_format)
        outcomes.append(Outcome(output_name(key, cfg.image_format, f"_aug{i}"), True, "augmented", data))
    return outcomes


def run(
    src: str | os.PathLike, dst: str | os.PathLike, cfg: OfflineAugmentConfig, options: RunOptions
) -> StageResult:
    """Copy SRC's images into DST, each followed by cfg.copies variants."""
    if cfg.copies < 0:
        raise StageError(f"augment copies must be >= 0, got {cfg.copies}")
    return run_stage("augment", resolve_inputs(src), dst, partial(augment_file, cfg=cfg), options,
                     settings=stage_settings("augment", cfg, src), tags=input_tags(src))


def main(argv: list[str] | None = None) -> int:
    return stage_cli("augment", OfflineAugmentConfig, run, argv, __doc__.split("\n")[0])


if __name__ == "__main__":
    sys.exit(main())
