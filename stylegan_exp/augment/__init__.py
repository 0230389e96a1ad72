"""Discriminator augmentation for small datasets: `augment=none|diffaugment|ada|fixed` (see AugmentConfig)."""

from __future__ import annotations

from stylegan_exp.augment.ada import ADA
from stylegan_exp.augment.base import Augmentation, Draws
from stylegan_exp.augment.diffaugment import DiffAugment
from stylegan_exp.config import AugmentConfig, AugmentKind, ConfigError

__all__ = ["Augmentation", "Draws", "build_augmentation"]


def build_augmentation(cfg: AugmentConfig | None, channels: int, *, static_shapes: bool = False
                       ) -> Augmentation:
    """The augmentation `cfg` describes; a ConfigError names a setting that cannot work.

    `static_shapes` (XLA) makes ADA's warps pad to a fixed size."""
    kind = AugmentKind.none if cfg is None else AugmentKind(cfg.kind)
    if kind == AugmentKind.none:
        return Augmentation()
    if kind == AugmentKind.diffaugment:
        for key in ("translation", "cutout"):
            if not 0 <= getattr(cfg, key) <= 1:
                raise ConfigError(f"augment.{key}={getattr(cfg, key)} must be a fraction of the image size, "
                                  "in [0, 1]")
        return DiffAugment(cfg.policy, cfg.translation, cfg.cutout)
    if not 0 <= cfg.p <= 1:
        raise ConfigError(f"augment.p={cfg.p} is a probability: it must be in [0, 1]")
    if kind == AugmentKind.fixed and cfg.p == 0:
        raise ConfigError("augment=fixed needs its probability: set augment.p (for example augment.p=0.2)")
    if cfg.interval < 1 or cfg.ada_kimg <= 0:
        raise ConfigError(f"augment.interval={cfg.interval} must be >= 1 D step and augment.ada_kimg="
                          f"{cfg.ada_kimg} > 0")
    return ADA(cfg.pipeline, cfg.strengths, channels, p=cfg.p, adaptive=kind == AugmentKind.ada,
               target=cfg.target, interval=cfg.interval, ada_kimg=cfg.ada_kimg, static_shapes=static_shapes)
