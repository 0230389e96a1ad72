"""The synthetic-face attribute reader, validated on faces drawn by the synthetic sampler itself."""

import numpy as np
import pytest

from stylegan_exp.data.face_attributes import classify_faces, hair_colors, smile_margins
from stylegan_exp.data.synthetic import HAIR_COLORS, render_face, sample_face_params


def _faces(resolution: int, count: int = 200, seed: int = 2026):
    params = [sample_face_params(np.random.default_rng([seed, i])) for i in range(count)]
    return np.stack([render_face(p, resolution) for p in params]), params


@pytest.mark.parametrize("resolution, min_smile_balanced", [(32, 0.7), (64, 0.9)])
def test_reads_hair_colour_and_smile_of_drawn_faces(resolution, min_smile_balanced):
    faces, params = _faces(resolution)
    found = classify_faces(faces)
    hair_accuracy = np.mean([n == p.hair_color_name for n, p in zip(found.hair_names, params, strict=True)])
    smiling = np.array([p.mouth_style == "smile" for p in params])
    balanced = (found.smile[smiling].mean() + (~found.smile[~smiling]).mean()) / 2
    print(f"{resolution}²: hair {hair_accuracy:.3f} (chance 1/13), smile balanced {balanced:.3f}, "
          f"smile accuracy {np.mean(found.smile == smiling):.3f}")
    assert hair_accuracy >= 0.95
    assert balanced >= min_smile_balanced
    assert (smile_margins(faces) > 0).tolist() == found.smile.tolist()


def test_one_image_and_palette_colour():
    face = render_face(sample_face_params(np.random.default_rng(1)), 32)
    flat = np.zeros((32, 32, 3), np.uint8)
    flat[...] = (245, 209, 110)  # the blonde palette entry everywhere
    assert HAIR_COLORS[hair_colors(flat)[0]] == "blonde"
    assert classify_faces(face).hair.shape == (1,)


@pytest.mark.parametrize("shape, dtype, message", [
    ((8, 8, 3), np.uint8, "too small"),
    ((32, 16, 3), np.uint8, "square RGB"),
    ((32, 32, 1), np.uint8, "square RGB"),
    ((32, 32, 3), np.float32, "uint8"),
])
def test_bad_images_are_one_line(shape, dtype, message):
    with pytest.raises(ValueError, match=message):
        classify_faces(np.zeros(shape, dtype))
