"""StyleGAN2's model config (networks_stylegan2.py: G_main + G_synthesis_stylegan2, D_stylegan2);
`model=stylegan2|stylegan2_e|stylegan2_small`."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

from stylegan_exp.config import ModelConfig, run_owned


class Topology(StrEnum):
    """StyleGAN2's G and D topologies (the paper's Figure 7)."""

    orig = "orig"  # plain: one toRGB / fromRGB at the full resolution, no shortcuts
    skip = "skip"  # G: toRGB outputs upsampled and summed; D: fromRGB of the downsampled image at every block
    resnet = "resnet"  # residual blocks: (x + 1×1 conv shortcut) / √2


@dataclass
class StyleGAN2Config(ModelConfig):
    """StyleGAN2 config F (G_main + G_synthesis_stylegan2, D_stylegan2): modulated convolutions with weight
    demodulation, a skip G and a residual D at full resolution, trained with lazy R1 and path-length
    regularization. `model=stylegan2_e` is config E (half the feature maps, γ = 100)."""

    ARCH: ClassVar[str] = "stylegan2"

    fmap_base: int = 16 << 10
    fmap_min: int = 1
    g_architecture: Topology = Topology.skip
    d_architecture: Topology = Topology.resnet
    resample_kernel: list[int] = field(default_factory=lambda: [1, 3, 3, 1])  # FIR filter of every resampling
    # stylegan2-ada's clamp of every conv layer's output (after bias and activation) to ±conv_clamp, which
    # its float16 layers need; None (StyleGAN2) clamps nothing.
    conv_clamp: float | None = None
    truncation_psi: float = run_owned(0.5)
    truncation_cutoff: int | None = run_owned(None)  # None: every layer, as G_main's default
    pl_weight: float = run_owned(2.0)
    pl_decay: float = run_owned(0.01)
    pl_batch_shrink: int = run_owned(2)  # path-length batch = minibatch // pl_batch_shrink
    g_reg_interval: int = run_owned(4)  # path-length regularization every this many minibatches (lazy)
    d_reg_interval: int = run_owned(16)  # R1 every this many minibatches (lazy)

    def nf(self, stage: int) -> int:
        return int(min(max(int(self.fmap_base / (2.0 ** (stage * self.fmap_decay))), self.fmap_min),
                       self.fmap_max))
