"""StyleGAN3 against an independent reference: our G (configs T and R, two resolutions, ψ 1 and 0.5) and D
against the NumPy reference of the original's forward passes (original_stylegan3.py), with weights, biases,
EMAs, w_avg and the input transform randomized so that every path carries signal: max |Δ| < 1e-3, and below
1e-3 of the images' own contrast."""

from __future__ import annotations

import dataclasses

import numpy as np
import original_stylegan3 as ref
import pytest
import tensorflow as tf

from stylegan_exp.models import build_discriminator, build_generator
from stylegan_exp.models.stylegan3.config import StyleGAN3Config
from stylegan_exp.models.stylegan3.ops import upsample_filter
from stylegan_exp.nets.weights import variables_by_path

TINY_T = StyleGAN3Config(name="t", cbase=512, cmax=16, latent_size=12, dlatent_size=12, mapping_fmaps=12,
                         num_layers=6)
TINY_R = dataclasses.replace(TINY_T, name="r", conv_kernel=1, channel_scale=2, use_radial_filters=True)


def randomize(net: tf.Module, seed: int) -> None:
    """Every variable drawn anew (magnitude EMAs positive), so biases, EMAs and w_avg matter."""
    rng = np.random.default_rng(seed)
    for path, var in variables_by_path(net).items():
        value = rng.standard_normal(var.shape).astype(np.float32)
        if path.endswith("magnitude_ema"):
            value = rng.uniform(0.3, 3.0, var.shape).astype(np.float32)
        elif path.endswith("transform"):
            c, s = np.cos(0.3), np.sin(0.3)
            value = np.array([[c, -s, 0.1], [s, c, -0.2], [0, 0, 1]], np.float32)
        elif path.endswith("bias"):
            value *= 0.2
        elif path.endswith("freqs"):
            value = var.numpy()
        var.assign(value)


def conv_oihw(w: np.ndarray) -> np.ndarray:
    return w.transpose(3, 2, 0, 1)


def original_generator_params(G) -> dict[str, np.ndarray]:
    """Our G's variables under the original's names and layouts."""
    ours = {k: v.numpy() for k, v in variables_by_path(G).items()}
    p = {"mapping.w_avg": ours["w_avg"]}
    for i in range(G.model.mapping_layers):
        p[f"mapping.fc{i}.weight"] = ours[f"mapping/dense/{i}/weight"].T
        p[f"mapping.fc{i}.bias"] = ours[f"mapping/dense/{i}/bias"]
    for key in ("transform", "freqs", "phases", "affine/bias"):
        p["synthesis.input." + key.replace("/", ".")] = ours[f"synthesis/input/{key}"]
    p["synthesis.input.weight"] = ours["synthesis/input/weight"].T
    p["synthesis.input.affine.weight"] = ours["synthesis/input/affine/weight"].T
    for i, layer in enumerate(G.synthesis.layers):
        name, src = f"synthesis.{layer.spec.name}", f"synthesis/layers/{i}"
        p[f"{name}.affine.weight"] = ours[f"{src}/affine/weight"].T
        p[f"{name}.affine.bias"] = ours[f"{src}/affine/bias"]
        p[f"{name}.weight"] = conv_oihw(ours[f"{src}/weight"])
        p[f"{name}.bias"] = ours[f"{src}/bias"]
        p[f"{name}.magnitude_ema"] = ours[f"{src}/magnitude_ema"]
    return {k: v.astype(np.float64) for k, v in p.items()}


def original_discriminator_params(D) -> dict[str, np.ndarray]:
    ours = {k: v.numpy() for k, v in variables_by_path(D).items()}
    p = {}
    for path, value in ours.items():
        parts = path.split("/")
        block, layer, kind = int(parts[1]), parts[2], parts[3]
        name = f"b{2 ** (block + 2)}.{layer}.{kind}"
        if kind == "weight" and value.ndim == 4:
            value = conv_oihw(value)
        elif kind == "weight" and layer == "fc":
            c_in = value.shape[0] // 16
            value = value.reshape(4, 4, c_in, -1).transpose(3, 2, 0, 1).reshape(value.shape[1], -1)
        elif kind == "weight":
            value = value.T
        p[name] = value
    return {k: v.astype(np.float64) for k, v in p.items()}


def reference_kwargs(model: StyleGAN3Config, res: int) -> dict:
    base, cmax = model.channels_g()
    return dict(img_resolution=res, img_channels=3, channel_base=base, channel_max=cmax,
                num_layers=model.num_layers, mapping_layers=model.mapping_layers, conv_clamp=model.conv_clamp,
                conv_kernel=model.conv_kernel, use_radial_filters=model.use_radial_filters)


@pytest.mark.parametrize("model", [TINY_T, TINY_R], ids=["T", "R"])
@pytest.mark.parametrize("res", [16, 32])
def test_generator_matches_the_original(model, res):
    tf.random.set_seed(res)
    G = build_generator(model, res)
    randomize(G, res)
    z = np.random.default_rng(1).standard_normal((3, model.latent_size)).astype(np.float32)
    p = original_generator_params(G)
    for psi, cutoff in ((1.0, None), (0.5, None), (0.5, 3))[: 3 if model is TINY_T else 2]:
        ours = G(tf.constant(z), psi=psi, cutoff=cutoff).numpy()
        theirs = ref.generator(p, z.astype(np.float64), truncation_psi=psi, truncation_cutoff=cutoff,
                               **reference_kwargs(model, res)).transpose(0, 2, 3, 1)
        assert ours.shape == theirs.shape == (3, res, res, 3)
        contrast = theirs.std(axis=(1, 2)).min()
        assert contrast > 1e-4  # images, not constants
        # within 1e-3 absolute, and within 1e-3 of the images' own contrast
        assert np.abs(ours - theirs).max() < 1e-3 * min(1.0, contrast), (psi, cutoff)


def test_conv_clamp_bites_as_the_originals():
    model = dataclasses.replace(TINY_T, conv_clamp=0.5)
    G = build_generator(model, 16)
    randomize(G, 3)
    z = np.random.default_rng(2).standard_normal((2, model.latent_size)).astype(np.float32)
    ours = G(tf.constant(z)).numpy()
    p = original_generator_params(G)
    theirs = ref.generator(p, z.astype(np.float64), **reference_kwargs(model, 16)).transpose(0, 2, 3, 1)
    unclamped = ref.generator(p, z.astype(np.float64),
                              **reference_kwargs(dataclasses.replace(model, conv_clamp=None), 16))
    error = np.abs(ours - theirs).max()
    assert error < 1e-5 and np.abs(unclamped.transpose(0, 2, 3, 1) - theirs).max() > 100 * error


@pytest.mark.parametrize(("res", "clamp"), [(16, 256.0), (32, 0.5)])
def test_discriminator_matches_the_original(res, clamp):
    model = dataclasses.replace(TINY_T, cbase=256, conv_clamp=clamp)
    D = build_discriminator(model, res)
    randomize(D, res)
    images = np.random.default_rng(3).standard_normal((8, res, res, 3)).astype(np.float32)
    ours = D(tf.constant(images)).numpy()
    p, x = original_discriminator_params(D), images.transpose(0, 3, 1, 2).astype(np.float64)
    kwargs = dict(img_resolution=res, channel_base=model.cbase, channel_max=model.cmax)
    theirs = ref.discriminator(p, x, conv_clamp=clamp, **kwargs)[:, 0]
    error = np.abs(ours - theirs).max()
    assert theirs.std() > 1e-3 and error < 1e-3 * theirs.std()
    if clamp < 1:  # the clamp bites
        assert np.abs(ref.discriminator(p, x, conv_clamp=None, **kwargs)[:, 0] - theirs).max() > 100 * error


@pytest.mark.parametrize("up", [2, 4])
@pytest.mark.parametrize("pad", [(9, 8), (-11, -12), (3, -2), (-1, 5)])
def test_polyphase_upsampling_equals_zero_insertion(up, pad):
    """The separable upsampling filter runs polyphase; it must equal upfirdn2d's zero insertion, padding or
    cropping, and filtering (here: the reference's)."""
    rng = np.random.default_rng(up)
    x = rng.standard_normal((2, 20, 20, 3)).astype(np.float32)
    f = rng.standard_normal(6 * up).astype(np.float32)
    ours = upsample_filter(tf.constant(x), f, up, pad).numpy()
    theirs = ref.upfirdn2d(x.transpose(0, 3, 1, 2).astype(np.float64), f.astype(np.float64), up=up,
                           padding=(*pad, *pad), gain=up**2).transpose(0, 2, 3, 1)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
