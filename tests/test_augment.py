"""Discriminator augmentation: each transform does what the papers say on real face crops, per image,
differentiably (to second order, for R1), and ADA's p follows the original's rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from stylegan_exp.augment import build_augmentation, warp
from stylegan_exp.augment.ada import ADA, adjusted_p
from stylegan_exp.augment.diffaugment import DiffAugment
from stylegan_exp.config import ADAStrengths, ADATransform, AugmentConfig, AugmentKind, ConfigError
from stylegan_exp.data.images import load_image
from stylegan_exp.nets.layers import downscale2d
from stylegan_exp.steps.replicas import part

BGC = list(ADATransform)


@pytest.fixture(scope="module")
def faces(shared_data) -> tf.Tensor:
    """Eight real anime face crops at 32², in [-1, 1]."""
    files = sorted((shared_data / "anime_faces_64").glob("*.jpg"))[:8]
    return downscale2d(np.stack([load_image(f, 3) for f in files])) / 127.5 - 1


def ada(transforms: list[ADATransform], p: float, channels: int = 3, **kwargs) -> ADA:
    return ADA(transforms, ADAStrengths(), channels, p=p, adaptive=False, **kwargs)


def augmented(aug, images: tf.Tensor, seed: int = 0) -> tuple[np.ndarray, dict]:
    draws = aug.draw(tf.random.Generator.from_seed(seed), images.shape[0])
    return aug(images, draws).numpy(), draws


def test_sym6_is_an_orthonormal_lowpass():
    h = warp.SYM6.astype(np.float64)
    assert h.sum() == pytest.approx(math.sqrt(2), abs=1e-6)
    for shift in range(0, 12, 2):
        assert np.dot(h[shift:], h[:h.size - shift]) == pytest.approx(float(shift == 0), abs=1e-6)


def test_identity_warp_and_whole_pixel_shifts_are_exact(faces):
    eye = tf.eye(3, batch_shape=[8])
    np.testing.assert_allclose(warp.warp(faces, eye).numpy(), faces.numpy(), atol=1e-5)
    np.testing.assert_allclose(warp.warp(faces, eye, static_padding=True).numpy(), faces.numpy(), atol=1e-5)
    shifted = warp.warp(faces, warp.translate(-3.0, 2.0)).numpy()  # output (x, y) shows input (x - 3, y + 2)
    np.testing.assert_allclose(shifted[:, :-2, 3:], faces.numpy()[:, 2:, :-3], atol=1e-5)
    np.testing.assert_allclose(shifted[:, :, 0], faces.numpy()[:, :, 3][:, list(range(2, 32)) + [30, 29]],
                               atol=1e-5)  # columns and rows beyond the border are mirrored


def test_warp_is_per_image_whatever_the_batch(faces):
    """Padding follows the batch's largest transform, but no image reads past its own margin."""
    n = faces.shape[0]
    inverse = warp.rotate(tf.linspace(-3.0, 3.0, n)) @ warp.scale(tf.linspace(0.6, 1.8, n), 1.3)
    whole = warp.warp(faces, inverse).numpy()
    for i in range(n):
        alone = warp.warp(faces[i:i + 1], inverse[i:i + 1]).numpy()[0]
        np.testing.assert_allclose(alone, whole[i], atol=2e-5)
    np.testing.assert_allclose(warp.warp(faces, inverse, static_padding=True).numpy(), whole, atol=2e-5)


def test_ada_at_p0_changes_nothing(faces):
    out, _ = augmented(ada(BGC, 0.0), faces)
    np.testing.assert_allclose(out, faces.numpy(), atol=1e-5)


def test_blits_are_exact(faces):
    x = faces.numpy()
    flipped, _ = augmented(ada([ADATransform.xflip], 1.0), faces)
    assert all(np.array_equal(o, i) or np.array_equal(o, i[:, ::-1]) for o, i in zip(flipped, x, strict=True))
    assert any(np.array_equal(o, i[:, ::-1]) for o, i in zip(flipped, x, strict=True))
    turned, _ = augmented(ada([ADATransform.rotate90], 1.0), faces, seed=1)
    ks = [next(k for k in range(4) if np.array_equal(o, np.rot90(i, k)))
          for o, i in zip(turned, x, strict=True)]
    assert len(set(ks)) > 1
    moved, draws = augmented(ada([ADATransform.xint], 1.0), faces, seed=2)
    shifts = np.rint((draws["uniform"].numpy()[:, 1:3] * 2 - 1) * 0.125 * 32).astype(int)
    padded = np.pad(x, [(0, 0), (4, 4), (4, 4), (0, 0)], mode="reflect")
    for o, p, (dx, dy) in zip(moved, padded, shifts, strict=True):  # output (x, y) shows input (x-dx, y-dy)
        np.testing.assert_array_equal(o, p[4 - dy:36 - dy, 4 - dx:36 - dx])


def test_colour_transforms(faces):
    x = faces.numpy()
    brighter, draws = augmented(ada([ADATransform.brightness], 1.0), faces)
    offsets = draws["normal"].numpy()[:, 0] * 0.2
    np.testing.assert_allclose(brighter, x + offsets[:, None, None, None], atol=1e-5)
    contrasted, draws = augmented(ada([ADATransform.contrast], 1.0), faces)
    factors = 2 ** (draws["normal"].numpy()[:, 0] * 0.5)
    np.testing.assert_allclose(contrasted, x * factors[:, None, None, None], atol=1e-5)
    flipped, _ = augmented(ada([ADATransform.lumaflip], 1.0), faces)
    luma = x.mean(axis=3, keepdims=True)
    assert all(np.allclose(o, i, atol=1e-5) or np.allclose(o, i - 2 * lu, atol=1e-5)
               for o, i, lu in zip(flipped, x, luma, strict=True))
    for t in (ADATransform.hue, ADATransform.saturation):  # both turn or stretch colour about the grey axis
        out, _ = augmented(ada([t], 1.0), faces)
        np.testing.assert_allclose(out.mean(axis=3), x.mean(axis=3), atol=1e-5)
        assert np.abs(out - x).max() > 0.1
    hued, _ = augmented(ada([ADATransform.hue], 1.0), faces)  # a rotation keeps the distance to grey
    np.testing.assert_allclose(np.linalg.norm(hued - hued.mean(3, keepdims=True), axis=3),
                               np.linalg.norm(x - luma, axis=3), atol=1e-4)
    grey = tf.reduce_mean(faces, axis=3, keepdims=True)  # one channel: hue and saturation do nothing
    out, _ = augmented(ada([ADATransform.hue, ADATransform.saturation], 1.0, channels=1), grey)
    np.testing.assert_array_equal(out, grey.numpy())


def test_each_transform_fires_with_probability_p():
    images = tf.random.stateless_uniform([4000, 4, 4, 3], [3, 4], -1, 1)
    for t, p in ((ADATransform.brightness, 0.3), (ADATransform.rotate, 0.6)):
        out, _ = augmented(ada([t], p), images)
        changed = np.abs(out - images.numpy()).max(axis=(1, 2, 3)) > 1e-4
        assert changed.mean() == pytest.approx(p, abs=0.03), t


def test_diffaugment_ops(faces):
    x = faces.numpy()
    moved, draws = augmented(DiffAugment(["translation"], translation=0.125, cutout=0.5), faces)
    shifts = np.floor(draws["uniform"].numpy()[:, 3:5] * 9).astype(int) - 4
    padded = np.pad(x, [(0, 0), (4, 4), (4, 4), (0, 0)])
    for o, p, (dx, dy) in zip(moved, padded, shifts, strict=True):  # zeros come in
        np.testing.assert_array_equal(o, p[4 - dy:36 - dy, 4 - dx:36 - dx])
    ones = tf.ones([64, 32, 32, 3])
    cut, draws = augmented(DiffAugment(["cutout"], translation=0.125, cutout=0.5), ones)
    zeroed = (cut == 0).all(axis=3).sum(axis=(1, 2))
    corner = np.floor(draws["uniform"].numpy()[:, 5:7] * 33) - 8
    inside = (corner >= 0).all(axis=1) & (corner <= 16).all(axis=1)
    assert (zeroed[inside] == 256).all() and (zeroed <= 256).all() and (zeroed > 0).all()
    coloured, draws = augmented(DiffAugment(["color"], translation=0.125, cutout=0.5), faces)
    u = draws["uniform"].numpy()
    expected = x + (u[:, 0] - 0.5)[:, None, None, None]
    mean = expected.mean(axis=3, keepdims=True)
    expected = (expected - mean) * (2 * u[:, 1])[:, None, None, None] + mean
    mean = expected.mean(axis=(1, 2, 3), keepdims=True)
    expected = (expected - mean) * (u[:, 2] + 0.5)[:, None, None, None] + mean
    np.testing.assert_allclose(coloured, expected, atol=1e-5)


@pytest.mark.parametrize("aug", [ada(BGC, 0.8), DiffAugment(["color", "translation", "cutout"], 0.125, 0.5)],
                         ids=["ada", "diffaugment"])
def test_strided_parts_augment_as_the_whole_batch(faces, aug):
    """What a replica or micro-batch computes from its rows of the draws is the whole batch's rows."""
    whole, draws = augmented(aug, faces, seed=5)
    for i in range(4):
        rows = tf.nest.map_structure(lambda t, i=i: part(t, i, 4), draws)
        np.testing.assert_allclose(aug(part(faces, i, 4), rows).numpy(), whole[i::4], atol=2e-5)


@pytest.mark.parametrize("aug", [ada(BGC, 0.8), DiffAugment(["color", "translation", "cutout"], 0.125, 0.5)],
                         ids=["ada", "diffaugment"])
def test_gradients_reach_the_images_to_second_order(faces, aug):
    draws = aug.draw(tf.random.Generator.from_seed(0), faces.shape[0])
    weight = tf.Variable(tf.random.stateless_normal([32, 32, 3], [0, 1]))
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            inner.watch(faces)
            score = tf.reduce_sum(tf.tanh(aug(faces, draws) * weight))
        grads = inner.gradient(score, faces)
        penalty = tf.reduce_sum(tf.square(grads))
    assert float(tf.reduce_sum(tf.abs(grads))) > 0
    assert float(tf.reduce_sum(tf.abs(outer.gradient(penalty, weight)))) > 0


def test_adjusted_p_follows_the_sign_of_rt_minus_target():
    step = 64 / 500_000
    assert float(adjusted_p(0.5, 0.7, 0.6, 64, 500)) == pytest.approx(0.5 + step)
    assert float(adjusted_p(0.5, 0.1, 0.6, 64, 500)) == pytest.approx(0.5 - step)
    assert float(adjusted_p(0.5, 0.6, 0.6, 64, 500)) == 0.5
    assert float(adjusted_p(0.0, -1.0, 0.6, 64, 500)) == 0.0
    assert float(adjusted_p(1.0, 1.0, 0.6, 64, 500)) == 1.0


def test_ada_adjusts_every_interval_from_the_accumulated_signs():
    aug = ADA(BGC, ADAStrengths(), 3, p=0.5, adaptive=True, target=0.6, interval=2, ada_kimg=1)
    aug.observe(tf.constant(1.0), tf.constant(100))
    assert float(aug.p) == pytest.approx(0.5)  # not yet due
    aug.observe(tf.constant(0.0), tf.constant(100))  # mean of the two steps: 0.5 < 0.6
    assert float(aug.p) == pytest.approx(0.5 - 200 / 1000)
    assert float(aug.seen) == 0 and int(aug.steps) == 0
    assert aug.log_state() == {"augment/p": pytest.approx(0.3)}
    fixed = ADA(BGC, ADAStrengths(), 3, p=0.3, adaptive=False)
    for _ in range(8):
        fixed.observe(tf.constant(1.0), tf.constant(100))
    assert float(fixed.p) == pytest.approx(0.3)


def test_settings_that_cannot_work_are_refused():
    def cfg(kind: str, **kwargs) -> AugmentConfig:
        return AugmentConfig(name=kind, kind=AugmentKind(kind), **kwargs)

    assert not build_augmentation(None, 3).enabled and not build_augmentation(cfg("none"), 3).enabled
    for bad, match in ((cfg("fixed"), "augment.p"), (cfg("ada", p=1.5), "augment.p=1.5"),
                       (cfg("ada", interval=0), "augment.interval=0"),
                       (cfg("diffaugment", cutout=2.0), "augment.cutout=2.0")):
        with pytest.raises(ConfigError, match=match):
            build_augmentation(bad, 3)
