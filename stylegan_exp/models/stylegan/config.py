"""The original StyleGAN's model config (networks_stylegan.py: G_style + D_basic); `model=stylegan|small`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from stylegan_exp.config import ModelConfig


@dataclass
class StyleGANConfig(ModelConfig):
    """The original StyleGAN (G_style + D_basic), grown progressively."""

    ARCH: ClassVar[str] = "stylegan"
    PROGRESSIVE: ClassVar[bool] = True

    fused_scale_min_res: int = 128  # fused up/down-scaling convolutions from this resolution up
