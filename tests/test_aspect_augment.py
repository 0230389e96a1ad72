"""Augmentations on rectangles: ADA's blits stay within the rectangle's symmetries (no quarter turns, which
would leak), its warps and DiffAugment's shifts and cut-outs work per axis; nothing changes at p = 0."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from stylegan_exp.augment.ada import ADA
from stylegan_exp.augment.diffaugment import DiffAugment
from stylegan_exp.config import ADAStrengths, ADATransform, DiffAugmentOp

IMAGES = np.random.RandomState(0).randn(64, 16, 8, 3).astype(np.float32)  # portraits: 16 tall, 8 wide


def _ada(pipeline: list[ADATransform], p: float) -> tuple[np.ndarray, ADA]:
    ada = ADA(pipeline, ADAStrengths(), 3, p=p, adaptive=False)
    return ada(IMAGES, ada.draw(tf.random.Generator.from_seed(1), len(IMAGES))).numpy(), ada


def test_blits_on_portraits_are_the_rectangles_symmetries():
    out, _ = _ada([ADATransform.xflip, ADATransform.rotate90], p=1.0)
    symmetries = {"id": lambda x: x, "xflip": lambda x: x[:, ::-1], "half turn": lambda x: x[::-1, ::-1],
                  "yflip": lambda x: x[::-1]}
    seen = set()
    for image, result in zip(IMAGES, out, strict=True):
        matches = [name for name, f in symmetries.items() if np.array_equal(result, f(image))]
        assert matches, "an output that is no symmetry of the rectangle"
        seen.update(matches)
    assert seen == set(symmetries)


def test_square_quarter_turns_are_kept():
    square = IMAGES[:, :8]
    ada = ADA([ADATransform.rotate90], ADAStrengths(), 3, p=1.0, adaptive=False)
    out = ada(square, ada.draw(tf.random.Generator.from_seed(1), len(square))).numpy()
    assert any(np.array_equal(o, np.rot90(s, 1)) or np.array_equal(o, np.rot90(s, 3))
               for s, o in zip(square, out, strict=True))


def test_full_pipeline_on_portraits_keeps_the_shape_and_is_identity_at_p0():
    out, _ = _ada(list(ADATransform), p=0.0)
    np.testing.assert_allclose(out, IMAGES, atol=1e-4)
    out, _ = _ada(list(ADATransform), p=0.8)
    assert out.shape == IMAGES.shape and np.isfinite(out).all()
    assert np.abs(out - IMAGES).max() > 0.1


def test_diffaugment_cuts_out_a_rectangle_of_each_sides_share():
    ones = np.ones((32, 16, 8, 3), np.float32)
    aug = DiffAugment([DiffAugmentOp.cutout], translation=0.125, cutout=0.5)
    out = aug(ones, aug.draw(tf.random.Generator.from_seed(2), len(ones))).numpy()
    for image in out[..., 0]:
        rows, cols = np.nonzero(image == 0)
        assert rows.max() - rows.min() + 1 <= 8 and cols.max() - cols.min() + 1 <= 4
        assert len(rows) == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    assert max(int((image == 0).sum()) for image in out[..., 0]) == 8 * 4


def test_diffaugment_shifts_each_axis_by_its_own_share():
    aug = DiffAugment([DiffAugmentOp.translation], translation=0.25, cutout=0.5)
    out = aug(IMAGES, aug.draw(tf.random.Generator.from_seed(3), len(IMAGES))).numpy()
    for image, result in zip(IMAGES, out, strict=True):
        found = [(dy, dx) for dy in range(-4, 5) for dx in range(-2, 3)
                 if np.array_equal(result[max(dy, 0):16 + min(dy, 0), max(dx, 0):8 + min(dx, 0)],
                                   image[max(-dy, 0):16 + min(-dy, 0), max(-dx, 0):8 + min(-dx, 0)])]
        assert found, "a shift beyond a quarter of its side"
