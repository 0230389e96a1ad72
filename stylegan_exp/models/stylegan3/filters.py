"""StyleGAN3's low-pass filters as pure NumPy functions (no SciPy at run time).

The original designs every up/downsampling filter of its filtered leaky ReLU with `scipy.signal.firwin`
(a windowed-sinc FIR filter whose Kaiser window is chosen from the transition band width) or, for config R's
non-critically sampled downsampling, a radially symmetric jinc filter under the same Kaiser window. These
functions compute the same taps from the same formulas (Kaiser's attenuation/β estimates, the normalized sinc,
Bessel J1 by its integral), so a model built here holds the filters the original would have pickled.
"""

from __future__ import annotations

import math

import numpy as np


def kaiser_atten(numtaps: int, width: float) -> float:
    """Kaiser's estimate of the stopband attenuation (dB) of a `numtaps` filter whose transition band is
    `width` wide, as a fraction of the Nyquist rate."""
    return 2.285 * (numtaps - 1) * math.pi * width + 7.95


def kaiser_beta(atten: float) -> float:
    """The Kaiser window's β for a stopband attenuation in dB (Kaiser's empirical formula)."""
    if atten > 50:
        return 0.1102 * (atten - 8.7)
    if atten > 21:
        return 0.5842 * (atten - 21) ** 0.4 + 0.07886 * (atten - 21)
    return 0.0


def kaiser_window(numtaps: int, width: float, fs: float) -> np.ndarray:
    """The symmetric Kaiser window of a `numtaps` filter, transition band `width`, sampling rate `fs`."""
    return np.kaiser(numtaps, kaiser_beta(kaiser_atten(numtaps, width / (fs / 2))))


def bessel_j1(x: np.ndarray) -> np.ndarray:
    """Bessel function of the first kind, order 1: J1(x) = 1/π ∫₀^π cos(τ − x sin τ) dτ. The integrand is
    smooth and periodic, so the trapezoid rule converges exponentially (float64 precision for |x| < 100)."""
    x = np.asarray(x, np.float64)
    tau = np.linspace(0.0, math.pi, 513)
    values = np.cos(tau - x[..., None] * np.sin(tau))
    return (values[..., 1:-1].sum(-1) + 0.5 * (values[..., 0] + values[..., -1])) / (len(tau) - 1)


def lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float) -> np.ndarray:
    """1-D Kaiser-windowed sinc low-pass filter (scipy.signal.firwin(numtaps, cutoff, width=width, fs=fs)):
    cutoff and width in the units of the sampling rate `fs`, taps scaled to unit gain at DC."""
    alpha = 0.5 * (numtaps - 1)
    m = np.arange(numtaps) - alpha
    nyq_cutoff = cutoff / (0.5 * fs)
    h = nyq_cutoff * np.sinc(nyq_cutoff * m) * kaiser_window(numtaps, width, fs)
    return (h / h.sum()).astype(np.float32)


def radial_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float) -> np.ndarray:
    """2-D radially symmetric jinc low-pass filter (config R): J1(2π f_c r)/(π r) on the tap grid, times the
    outer product of the Kaiser window of `lowpass_filter`, normalized to sum 1."""
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    safe = np.where(r == 0, 1.0, r)
    f = np.where(r == 0, cutoff, bessel_j1(2 * cutoff * math.pi * safe) / (math.pi * safe))
    w = kaiser_window(numtaps, width, fs)
    f = f * np.outer(w, w)
    return (f / f.sum()).astype(np.float32)


def design_lowpass(numtaps: int, cutoff: float, width: float, fs: float,
                   radial: bool = False) -> np.ndarray | None:
    """A layer's up/downsampling filter as the original designs it: None for one tap (no filtering), else the
    separable 1-D filter or, with `radial`, the 2-D jinc filter."""
    if numtaps < 1:
        raise ValueError(f"a filter needs at least one tap, got {numtaps}")
    if numtaps == 1:
        return None
    if radial:
        return radial_lowpass_filter(numtaps, cutoff, width, fs)
    return lowpass_filter(numtaps, cutoff, width, fs)
