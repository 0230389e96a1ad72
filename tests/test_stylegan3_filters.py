"""StyleGAN3's filter design and synthesis layout as pure functions, against SciPy (what the original calls)
and the reference's reading of SynthesisNetwork.__init__ (original_stylegan3.py)."""

from __future__ import annotations

import numpy as np
import original_stylegan3 as ref
import pytest
import scipy.signal
import scipy.special

from stylegan_exp.models.stylegan3.filters import bessel_j1, design_lowpass, kaiser_beta, lowpass_filter
from stylegan_exp.models.stylegan3.layout import synthesis_layout


@pytest.mark.parametrize(("numtaps", "cutoff", "width", "fs"),
                         [(12, 2.0, 4.3, 32), (12, 5.66, 3.1, 64), (24, 8.0, 1.7, 64), (6, 3.0, 2.0, 16)])
def test_lowpass_filter_is_scipy_firwin(numtaps, cutoff, width, fs):
    ours = lowpass_filter(numtaps, cutoff, width, fs)
    np.testing.assert_allclose(ours, scipy.signal.firwin(numtaps, cutoff, width=width, fs=fs), atol=1e-7)
    assert ours.sum() == pytest.approx(1.0, abs=1e-6)


def test_kaiser_beta_and_bessel_j1_are_scipys():
    for atten in (10.0, 21.0, 30.0, 50.0, 70.0):
        assert kaiser_beta(atten) == pytest.approx(scipy.signal.kaiser_beta(atten), abs=1e-12)
    x = np.linspace(-40, 40, 1001)
    np.testing.assert_allclose(bessel_j1(x), scipy.special.j1(x), atol=1e-12)


def test_radial_filter_is_the_originals_jinc_and_one_tap_is_none():
    ours = design_lowpass(12, 4.0, 3.5, 32, radial=True)
    np.testing.assert_allclose(ours, ref.design_lowpass_filter(12, 4.0, 3.5, 32, radial=True), atol=1e-7)
    assert ours.shape == (12, 12) and np.allclose(ours, ours.T)
    assert design_lowpass(1, 4.0, 3.5, 32) is None
    with pytest.raises(ValueError, match="one tap"):
        design_lowpass(0, 4.0, 3.5, 32)


@pytest.mark.parametrize("res", [16, 32, 256, 1024])
def test_layout_is_the_originals(res):
    first, ours = synthesis_layout(res, 3, channel_base=32768, channel_max=512)
    inp, layers = ref.layer_params(res, 3, 32768, 512, 14)
    assert (first.channels, first.size, first.sampling_rate) == (inp["channels"], inp["size"],
                                                                 inp["sampling_rate"])
    assert [s.name for s in ours] == [spec["name"] for spec in layers]
    for s, spec in zip(ours, layers, strict=True):
        assert (s.up, s.down, *s.padding, s.conv_kernel) == (spec["up"], spec["down"], *spec["padding"][:2],
                                                             spec["k"])
        assert s.padding == tuple(spec["padding"][2:])
        for taps, f in ((s.up_taps, spec["fu"]), (s.down_taps, spec["fd"])):
            assert taps == (1 if f is None else len(f))


def test_config_r_layout_has_its_radial_filters_and_1x1_convolutions():
    _, specs = synthesis_layout(32, 3, channel_base=1024, channel_max=32, num_layers=6, conv_kernel=1,
                                use_radial_filters=True)
    assert [s.down_radial for s in specs] == [True] * 4 + [False] * 3  # layers 4… are critical
    assert {s.conv_kernel for s in specs} == {1}
    with pytest.raises(ValueError, match="more synthesis layers"):
        synthesis_layout(32, 3, channel_base=1024, channel_max=32, num_layers=2)
