"""Freeze-D (Mo et al. 2020): fine-tuning keeps the source D's highest-resolution blocks, the generic
low-level features, and trains only the rest."""

from __future__ import annotations

import tensorflow as tf

from stylegan_exp.config import ConfigError


def frozen_blocks(D: tf.Module, k: int) -> tuple[list[tf.Variable], list[str]]:
    """The trainable variables of D's `k` highest-resolution blocks (each with its fromRGB), and the blocks'
    names (`64×64`, …). D lists its blocks in `D.blocks`, lowest resolution (4×4) first; the 4×4 block,
    which scores, always trains."""
    if k == 0:
        return [], []
    blocks = getattr(D, "blocks", None)
    if blocks is None:
        raise ConfigError(f"transfer.freeze_d={k}: this discriminator ({type(D).__name__}) does not list its "
                          "blocks by resolution, so none can be frozen")
    if not 0 < k < len(blocks):
        raise ConfigError(f"transfer.freeze_d={k}: D at {D.resolution}² has {len(blocks)} blocks; freeze 0 "
                          f"to {len(blocks) - 1} of them (the 4×4 block always trains)")
    frozen = blocks[len(blocks) - k:]
    names = [f"{4 * 2**i}×{4 * 2**i}" for i in range(len(blocks) - 1, len(blocks) - k - 1, -1)]
    return [v for block in frozen for v in block.trainable_variables], names
