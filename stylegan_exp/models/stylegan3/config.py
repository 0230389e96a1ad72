"""StyleGAN3's model config (NVlabs/stylegan3 networks_stylegan3.py + the sg2-ada residual D, train.py's
choices); `model=stylegan3` (config T) and `model=stylegan3_r` (config R)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from stylegan_exp.config import ConfigError, ModelConfig, run_owned

# ModelConfig's keys StyleGAN3 has no use for, with their defaults: set to anything else, a run refuses them
# rather than ignoring them (G's widths are cbase/cmax, and StyleGAN3 has no noise inputs).
NOT_APPLICABLE = {"fmap_base": 8192, "fmap_decay": 1.0, "fmap_max": 512, "use_noise": False}


@dataclass
class StyleGAN3Config(ModelConfig):
    """StyleGAN3 (alias-free GAN): a 2-layer mapping network, Fourier-feature input, modulated convolutions
    with filtered leaky ReLUs, and StyleGAN2-ADA's residual D, trained with R1 only. The defaults are config T
    at the original's train.py defaults (`--cbase 32768 --cmax 512`, mapping depth 2, no style mixing);
    config R (`model=stylegan3_r`) sets 1×1 convolutions, radial filters, `channel_scale: 2` (train.py doubles
    G's cbase/cmax for R, not D's) and the early blur of D's images."""

    ARCH: ClassVar[str] = "stylegan3"

    mapping_layers: int = 2
    use_noise: bool = False
    cbase: int = 32768  # train.py --cbase: G min(cbase / 2 / f_c, cmax) channels, D min(cbase / res, cmax)
    cmax: int = 512  # train.py --cmax
    channel_scale: int = 1  # G's cbase and cmax multiplier (2 for config R, as train.py's)
    num_layers: int = 14  # synthesis layers, excluding the Fourier input and ToRGB
    num_critical: int = 2  # critically sampled layers at the end
    first_cutoff: float = 2.0
    first_stopband: float = 2**2.1
    last_stopband_rel: float = 2**0.3
    margin_size: int = 10  # extra pixels on each side of every non-final layer
    output_scale: float = 0.25
    conv_kernel: int = 3  # 1 for config R
    filter_size: int = 6  # low-pass taps per unit of the up/down factor
    lrelu_upsampling: int = 2  # the leaky ReLU runs at this multiple of the layer's sampling rate
    use_radial_filters: bool = False  # config R: jinc downsampling filters in non-critical layers
    conv_clamp: float | None = 256.0  # clamp of every G and D activation (None: no clamp)
    style_mixing_prob: float = run_owned(0.0)
    dlatent_avg_beta: float = run_owned(0.998)
    truncation_psi: float = run_owned(0.5)
    truncation_cutoff: int | None = run_owned(None)  # None: every layer, as the original's default
    r1_gamma: float = run_owned(8.2)  # the paper's FFHQ 1024² T value; train.py's --gamma is required
    d_reg_interval: int = run_owned(16)  # lazy R1 every this many minibatches
    magnitude_ema_kimg: float = run_owned(20.0)  # half-life of each layer's input magnitude EMA (train.py)
    blur_sigma: float = run_owned(0.0)  # D sees images blurred by this σ (px) at first (R: 10) …
    blur_fade_kimg: float = run_owned(0.0)  # … fading to none over this many kimg (R: batch·200/32)

    def __post_init__(self) -> None:
        for key, default in NOT_APPLICABLE.items():
            value = getattr(self, key)
            if value != default:
                why = "has no noise inputs" if key == "use_noise" else "is sized by model.cbase/cmax"
                raise ConfigError(f"model.{key}={value} does not apply to StyleGAN3, which {why}")
        if self.mapping_fmaps != self.dlatent_size:
            raise ConfigError(f"model.mapping_fmaps={self.mapping_fmaps} must equal model.dlatent_size="
                              f"{self.dlatent_size}: StyleGAN3's hidden mapping layers are w-sized")
        if self.num_layers <= self.num_critical:
            raise ConfigError(f"model.num_layers={self.num_layers} must exceed model.num_critical="
                              f"{self.num_critical}")
        if self.blur_sigma < 0 or self.blur_fade_kimg < 0:
            raise ConfigError("model.blur_sigma and model.blur_fade_kimg must be >= 0")

    def channels_g(self) -> tuple[int, int]:
        """The synthesis network's channel_base and channel_max."""
        return self.cbase * self.channel_scale, self.cmax * self.channel_scale

    def nf_d(self, res: int) -> int:
        """D's channels at a resolution (sg2-ada: min(channel_base // res, channel_max))."""
        return min(self.cbase // res, self.cmax)
