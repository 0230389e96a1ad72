"""An independent NumPy reference of NVlabs/stylegan3's forward passes (networks_stylegan3.Generator with its
filtered_lrelu reference path, and networks_stylegan2.Discriminator as train.py builds it for StyleGAN3), in
the original's NCHW layout with the original's parameter names and shapes ([out, in] dense, [out, in, k, k]
convolutions), filters designed with SciPy as the original does. Written from the original algorithm; it
shares no code with stylegan_exp.
"""

from __future__ import annotations

import numpy as np
import scipy.signal
import scipy.special

SQRT2 = np.sqrt(2.0)


def lrelu(x, slope=0.2):
    return np.where(x >= 0, x, x * slope)


def fc(x, p, name, lrmul=1.0, activation="linear"):
    w, b = p[f"{name}.weight"], p.get(f"{name}.bias")
    y = x @ (w * (lrmul / np.sqrt(w.shape[1]))).T
    if b is not None:
        y = y + b * lrmul
    return lrelu(y) * SQRT2 if activation == "lrelu" else y


def conv2d(x, w, padding=0, stride=1):
    """Cross-correlation NCHW × OIkk with symmetric zero padding."""
    x = np.pad(x, [(0, 0), (0, 0), (padding, padding), (padding, padding)])
    k = w.shape[2]
    win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    return np.einsum("nihwab,oiab->nohw", win, w, optimize=True)


def upfirdn2d(x, f, up=1, down=1, padding=(0, 0, 0, 0), gain=1.0):
    """torch_utils.ops.upfirdn2d's reference: zero-insert, pad/crop (x0, x1, y0, y1), true convolution with f
    (1-D: separable) times gain**(f.ndim/2), keep every down-th sample."""
    n, c, h, w = x.shape
    if up > 1:
        z = np.zeros((n, c, h, up, w, up), x.dtype)
        z[:, :, :, 0, :, 0] = x
        x = z.reshape(n, c, h * up, w * up)
    px0, px1, py0, py1 = padding
    x = np.pad(x, [(0, 0), (0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0))])
    x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]
    if f is None:
        f = np.ones((1, 1))
    f = np.asarray(f, np.float64) * gain ** (f.ndim / 2)
    f = np.flip(f, axis=tuple(range(f.ndim)))
    if f.ndim == 2:
        x = scipy.signal.correlate(x, f[None, None], mode="valid")  # f is flipped: a true convolution
    else:
        k = len(f)
        x = np.lib.stride_tricks.sliding_window_view(x, k, axis=3) @ f
        x = np.lib.stride_tricks.sliding_window_view(x, k, axis=2) @ f
    return x[:, :, ::down, ::down]


def filtered_lrelu(x, fu, fd, b, up, down, padding, gain, slope, clamp):
    x = x + b[None, :, None, None]
    x = upfirdn2d(x, fu, up=up, padding=padding, gain=up**2)
    x = lrelu(x, slope) * gain
    if clamp is not None:
        x = np.clip(x, -clamp, clamp)
    return upfirdn2d(x, fd, down=down)


def design_lowpass_filter(numtaps, cutoff, width, fs, radial=False):
    if numtaps == 1:
        return None
    if not radial:
        return scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    f = scipy.special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    w = np.kaiser(numtaps, beta)
    f *= np.outer(w, w)
    return f / np.sum(f)


def modulated_conv2d(x, w, s, demodulate, padding, input_gain):
    """One weight per sample, as the original's grouped convolution."""
    if demodulate:
        w = w / np.sqrt(np.mean(np.square(w), axis=(1, 2, 3), keepdims=True))
        s = s / np.sqrt(np.mean(np.square(s)))
    out = []
    for i in range(x.shape[0]):
        wi = w * s[i][None, :, None, None]
        if demodulate:
            wi = wi / np.sqrt(np.sum(np.square(wi), axis=(1, 2, 3), keepdims=True) + 1e-8)
        wi = wi * input_gain
        out.append(conv2d(x[i : i + 1], wi, padding=padding))
    return np.concatenate(out)


def layer_params(img_resolution, img_channels, channel_base, channel_max, num_layers, num_critical=2,
                 first_cutoff=2, first_stopband=2**2.1, last_stopband_rel=2**0.3, margin_size=10,
                 conv_kernel=3, filter_size=6, lrelu_upsampling=2, use_radial_filters=False):
    """SynthesisNetwork.__init__ and SynthesisLayer.__init__: the input's and each layer's settings."""
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
    sizes = sampling_rates + margin_size * 2
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels
    inp = dict(channels=int(channels[0]), size=int(sizes[0]), sampling_rate=sampling_rates[0],
               bandwidth=cutoffs[0])
    layers = []
    for idx in range(num_layers + 1):
        prev = max(idx - 1, 0)
        is_torgb = idx == num_layers
        crit = idx >= num_layers - num_critical
        in_sr, out_sr = int(sampling_rates[prev]), int(sampling_rates[idx])
        tmp_sr = max(in_sr, out_sr) * (1 if is_torgb else lrelu_upsampling)
        k = 1 if is_torgb else conv_kernel
        up = int(np.rint(tmp_sr / in_sr))
        down = int(np.rint(tmp_sr / out_sr))
        up_taps = filter_size * up if up > 1 and not is_torgb else 1
        down_taps = filter_size * down if down > 1 and not is_torgb else 1
        fu = design_lowpass_filter(up_taps, cutoffs[prev], half_widths[prev] * 2, tmp_sr)
        fd = design_lowpass_filter(down_taps, cutoffs[idx], half_widths[idx] * 2, tmp_sr,
                                   radial=use_radial_filters and not crit)
        in_size, out_size = np.array([sizes[prev]] * 2), np.array([sizes[idx]] * 2)
        pad_total = (out_size - 1) * down + 1
        pad_total -= (in_size + k - 1) * up
        pad_total += up_taps + down_taps - 2
        pad_lo = (pad_total + up) // 2
        pad_hi = pad_total - pad_lo
        layers.append(dict(name=f"L{idx}_{int(out_size[0])}_{int(channels[idx])}", is_torgb=is_torgb,
                           in_channels=int(channels[prev]), k=k, up=up, down=down, fu=fu, fd=fd,
                           padding=[int(pad_lo[0]), int(pad_hi[0]), int(pad_lo[1]), int(pad_hi[1])]))
    return inp, layers


def synthesis_input(p, w, inp):
    n, c = w.shape[0], inp["channels"]
    freqs, phases, transform = p["input.freqs"], p["input.phases"], p["input.transform"]
    t = fc(w, p, "input.affine")
    t = t / np.linalg.norm(t[:, :2], axis=1, keepdims=True)
    m_r = np.tile(np.eye(3), [n, 1, 1])
    m_r[:, 0, 0], m_r[:, 0, 1], m_r[:, 1, 0], m_r[:, 1, 1] = t[:, 0], -t[:, 1], t[:, 1], t[:, 0]
    m_t = np.tile(np.eye(3), [n, 1, 1])
    m_t[:, 0, 2], m_t[:, 1, 2] = -t[:, 2], -t[:, 3]
    transforms = m_r @ m_t @ transform[None]
    phases = phases[None] + (freqs[None] @ transforms[:, :2, 2:])[:, :, 0]
    freqs = freqs[None] @ transforms[:, :2, :2]
    bw, sr = inp["bandwidth"], inp["sampling_rate"]
    amplitudes = np.clip(1 - (np.linalg.norm(freqs, axis=2) - bw) / (sr / 2 - bw), 0, 1)
    size = inp["size"]
    base = np.linspace(-1, 1, size) * (size - 1) / size  # affine_grid, align_corners=False
    gx, gy = np.meshgrid(base * 0.5 * size / sr, base * 0.5 * size / sr)  # [H, W] each
    grid = np.stack([gx, gy], axis=-1)  # [H, W, 2] (x, y)
    x = np.einsum("hwj,ncj->nhwc", grid, freqs) + phases[:, None, None, :]
    x = np.sin(x * (np.pi * 2)) * amplitudes[:, None, None, :]
    x = x @ (p["input.weight"] / np.sqrt(c)).T
    return x.transpose(0, 3, 1, 2)


def synthesis_layer(p, x, w, spec, conv_clamp):
    name = spec["name"]
    styles = fc(w, p, f"{name}.affine")
    if spec["is_torgb"]:
        styles = styles * (1 / np.sqrt(spec["in_channels"] * spec["k"] ** 2))
    gain_in = 1 / np.sqrt(p[f"{name}.magnitude_ema"])
    x = modulated_conv2d(x, p[f"{name}.weight"], styles, demodulate=not spec["is_torgb"],
                         padding=spec["k"] - 1, input_gain=gain_in)
    return filtered_lrelu(x, spec["fu"], spec["fd"], p[f"{name}.bias"], spec["up"], spec["down"],
                          spec["padding"], gain=1 if spec["is_torgb"] else SQRT2,
                          slope=1 if spec["is_torgb"] else 0.2, clamp=conv_clamp)


def generator(p, z, *, img_resolution, img_channels, channel_base, channel_max, num_layers=14,
              mapping_layers=2, lr_multiplier=0.01, truncation_psi=1.0, truncation_cutoff=None,
              output_scale=0.25, conv_clamp=256, **layer_kwargs):
    """G(z): images NCHW. `p` holds 'mapping.*' and 'synthesis.*' parameters and buffers."""
    m = {k[len("mapping."):]: v for k, v in p.items() if k.startswith("mapping.")}
    s = {k[len("synthesis."):]: v for k, v in p.items() if k.startswith("synthesis.")}
    num_ws = num_layers + 2
    x = z / np.sqrt(np.mean(np.square(z), axis=1, keepdims=True) + 1e-8)
    for i in range(mapping_layers):
        x = fc(x, m, f"fc{i}", lrmul=lr_multiplier, activation="lrelu")
    ws = np.repeat(x[:, None], num_ws, axis=1)
    if truncation_psi != 1:
        cut = num_ws if truncation_cutoff is None else truncation_cutoff
        ws[:, :cut] = m["w_avg"] + (ws[:, :cut] - m["w_avg"]) * truncation_psi
    inp, layers = layer_params(img_resolution, img_channels, channel_base, channel_max, num_layers,
                               **layer_kwargs)
    x = synthesis_input(s, ws[:, 0], inp)
    for spec, i in zip(layers, range(1, num_ws), strict=True):
        x = synthesis_layer(s, x, ws[:, i], spec, conv_clamp)
    return x * output_scale


def conv_layer(p, name, x, *, down=1, activation="lrelu", conv_clamp=None, gain=1.0, bias=True):
    """networks_stylegan2.Conv2dLayer (resample filter [1, 3, 3, 1], padding k // 2)."""
    w = p[f"{name}.weight"]
    k = w.shape[2]
    w = w / np.sqrt(w.shape[1] * k * k)
    f = np.array([1.0, 3.0, 3.0, 1.0])
    f = f / f.sum()
    if down > 1:
        pad = k // 2
        px0, px1 = pad + (len(f) - down + 1) // 2, pad + (len(f) - down) // 2
        x = upfirdn2d(x, f, padding=(px0, px1, px0, px1))
        x = conv2d(x, w, stride=down)
    else:
        x = conv2d(x, w, padding=k // 2)
    if bias:
        x = x + p[f"{name}.bias"][None, :, None, None]
    if activation == "lrelu":
        x = lrelu(x) * SQRT2 * gain
        clamp = None if conv_clamp is None else conv_clamp * gain
    else:
        x = x * gain
        clamp = None
    return x if clamp is None else np.clip(x, -clamp, clamp)


def discriminator(p, img, *, img_resolution, channel_base, channel_max, mbstd_group_size=4, conv_clamp=256):
    """D(img NCHW) → scores [N, 1] (resnet architecture, unconditional)."""
    log2 = int(np.log2(img_resolution))
    ch = {2**i: min(channel_base // 2**i, channel_max) for i in range(2, log2 + 1)}
    x = None
    for res in [2**i for i in range(log2, 2, -1)]:
        b = f"b{res}"
        if x is None:
            x = conv_layer(p, f"{b}.fromrgb", img, conv_clamp=conv_clamp)
        y = conv_layer(p, f"{b}.skip", x, down=2, activation="linear", gain=np.sqrt(0.5), bias=False)
        x = conv_layer(p, f"{b}.conv0", x, conv_clamp=conv_clamp)
        x = conv_layer(p, f"{b}.conv1", x, down=2, conv_clamp=conv_clamp, gain=np.sqrt(0.5))
        x = y + x
    n, c, h, w = x.shape
    g = min(mbstd_group_size, n)
    y = x.reshape(g, -1, 1, c, h, w)
    y = y - y.mean(axis=0)
    y = np.sqrt(np.square(y).mean(axis=0) + 1e-8)
    y = y.mean(axis=(2, 3, 4)).reshape(-1, 1, 1, 1)
    y = np.tile(y, (g, 1, h, w))
    x = np.concatenate([x, y], axis=1)
    x = conv_layer(p, "b4.conv", x, conv_clamp=conv_clamp)
    x = fc(x.reshape(n, -1), p, "b4.fc", activation="lrelu")
    assert ch[4] == x.shape[1]
    return fc(x, p, "b4.out")
