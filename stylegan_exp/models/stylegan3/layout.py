"""StyleGAN3's synthesis layout as a pure function (SynthesisNetwork.__init__ / SynthesisLayer.__init__ of
NVlabs/stylegan3): per layer its cutoff, stopband, sampling rate, size with margin, channels, up/down factors,
filter taps and the padding of its filtered leaky ReLU.

Cutoffs f_c and minimum stopbands f_t follow a geometric progression from the first layer to the last
`num_critical` layers, which are critically sampled at the output resolution; sampling rates are the powers of
two just above 2·f_t (at most the resolution); the transition half-width is f_h = max(f_t, s/2) − f_c; layers
carry `margin_size` extra pixels per side except the last two; channels are min(cbase/2 / f_c, cmax), the last
being the image's. Each layer's leaky ReLU runs at `lrelu_upsampling` × its larger rate (ToRGB at its own).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LayerSpec:
    """One synthesis layer (index `idx`; the last is ToRGB). Sizes are square; `padding` is (low, high) on
    both axes of the upsampled signal (negative: cropped)."""

    idx: int
    is_torgb: bool
    critical: bool
    in_channels: int
    out_channels: int
    in_size: int
    out_size: int
    in_sampling_rate: int
    out_sampling_rate: int
    tmp_sampling_rate: int
    in_cutoff: float
    out_cutoff: float
    in_half_width: float
    out_half_width: float
    conv_kernel: int
    up: int
    down: int
    up_taps: int
    down_taps: int
    down_radial: bool
    padding: tuple[int, int]

    @property
    def name(self) -> str:
        """The original's attribute name, `L{idx}_{out_size}_{out_channels}`."""
        return f"L{self.idx}_{self.out_size}_{self.out_channels}"


@dataclass(frozen=True)
class InputSpec:
    """The Fourier-feature input: channels, size (with margin), sampling rate and bandwidth (its cutoff)."""

    channels: int
    size: int
    sampling_rate: float
    bandwidth: float


def synthesis_layout(resolution: int, img_channels: int, *, channel_base: int, channel_max: int,
                     num_layers: int = 14, num_critical: int = 2, first_cutoff: float = 2.0,
                     first_stopband: float = 2**2.1, last_stopband_rel: float = 2**0.3, margin_size: int = 10,
                     conv_kernel: int = 3, filter_size: int = 6, lrelu_upsampling: int = 2,
                     use_radial_filters: bool = False) -> tuple[InputSpec, list[LayerSpec]]:
    """The input and the `num_layers` + 1 layers (the last is ToRGB) of a synthesis network."""
    if num_layers <= num_critical:
        raise ValueError(f"StyleGAN3 needs more synthesis layers ({num_layers}) than critically sampled ones "
                         f"({num_critical})")
    last_cutoff = resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, resolution))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + margin_size * 2
    sizes[-2:] = resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels

    layers = []
    for idx in range(num_layers + 1):
        prev = max(idx - 1, 0)
        torgb = idx == num_layers
        critical = idx >= num_layers - num_critical
        in_rate, out_rate = int(rates[prev]), int(rates[idx])
        tmp_rate = max(in_rate, out_rate) * (1 if torgb else lrelu_upsampling)
        kernel = 1 if torgb else conv_kernel
        up, down = tmp_rate // in_rate, tmp_rate // out_rate
        up_taps = filter_size * up if up > 1 and not torgb else 1
        down_taps = filter_size * down if down > 1 and not torgb else 1
        in_size, out_size = int(sizes[prev]), int(sizes[idx])
        pad_total = (out_size - 1) * down + 1 - (in_size + kernel - 1) * up + up_taps + down_taps - 2
        pad_lo = (pad_total + up) // 2  # the symmetric interpretation of sample locations (Appendix C.3)
        layers.append(LayerSpec(
            idx=idx, is_torgb=torgb, critical=critical,
            in_channels=int(channels[prev]), out_channels=int(channels[idx]), in_size=in_size,
            out_size=out_size,
            in_sampling_rate=in_rate, out_sampling_rate=out_rate, tmp_sampling_rate=tmp_rate,
            in_cutoff=float(cutoffs[prev]), out_cutoff=float(cutoffs[idx]),
            in_half_width=float(half_widths[prev]), out_half_width=float(half_widths[idx]),
            conv_kernel=kernel, up=up, down=down, up_taps=up_taps, down_taps=down_taps,
            down_radial=use_radial_filters and not critical, padding=(int(pad_lo), int(pad_total - pad_lo))))
    first = InputSpec(int(channels[0]), int(sizes[0]), float(rates[0]), float(cutoffs[0]))
    return first, layers
