"""The built-in synthetic face dataset: deterministic, varied, and cached safely on disk."""

import dataclasses

import numpy as np
import pytest

from stylegan_exp.data import synthetic
from stylegan_exp.data.synthetic import HAIR_STYLES, ensure_synthetic_dataset, render_face, render_faces, sample_face_params


def test_shape_dtype_and_determinism():
    a = render_faces(10, 32, seed=3, progress=False)
    b = render_faces(10, 32, seed=3, progress=False)
    assert a.shape == (10, 32, 32, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)


def test_face_independent_of_count():
    np.testing.assert_array_equal(
        render_faces(10, 32, seed=5, progress=False), render_faces(20, 32, seed=5, progress=False)[:10]
    )


def test_seeds_differ_and_faces_vary():
    a = render_faces(8, 32, seed=0, progress=False)
    b = render_faces(8, 32, seed=1, progress=False)
    assert not np.array_equal(a, b)
    assert len({img.tobytes() for img in a}) == len(a)


def test_params_vary():
    params = [sample_face_params(np.random.default_rng([0, i])) for i in range(50)]
    hair = np.array([p.hair_color for p in params], np.float64)
    assert hair.std(axis=0).mean() > 40
    assert len({p.hair_style for p in params}) == len(HAIR_STYLES)
    assert len({p.eye_color for p in params}) > 40
    sizes = np.array([p.face_size for p in params])
    assert sizes.min() >= 0.85 and sizes.max() <= 1.15


def test_render_face_every_style_64():
    base = sample_face_params(np.random.default_rng(0))
    for style in HAIR_STYLES:
        img = render_face(dataclasses.replace(base, hair_style=style), 64)
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8
        assert img.std() > 20


def test_ensure_dataset_writes_then_reuses(tmp_path, caplog):
    # Written alongside; imported here so drawing tests run alone.
    from stylegan_exp.data import reader as records

    out = tmp_path / "faces"
    assert ensure_synthetic_dataset(out, count=12, resolution=16, seed=0) == out
    info = records.load_info(out)
    assert (info.count, info.resolution) == (12, 16)
    assert info.meta["synthetic"] == {"count": 12, "resolution": 16, "seed": 0, "generator_version": 1}

    mtimes = {f: f.stat().st_mtime_ns for f in out.rglob("*") if f.is_file()}
    with caplog.at_level("INFO", logger=synthetic.__name__):
        ensure_synthetic_dataset(out, count=12, resolution=16, seed=0)
    assert "reusing" in caplog.text
    assert {f: f.stat().st_mtime_ns for f in out.rglob("*") if f.is_file()} == mtimes

    with pytest.raises(ValueError, match="count") as err:
        ensure_synthetic_dataset(out, count=13, resolution=16, seed=0)
    assert str(out) in str(err.value) and "\n" not in str(err.value)
