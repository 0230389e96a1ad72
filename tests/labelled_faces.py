"""A labelled synthetic-faces dataset for the conditional tests: each face's hair colour as a categorical
group (`<colour>_hair`, 13 values) and whether it smiles (`smile`), packed with the product's writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stylegan_exp.data.dataset_format import LabelSpace
from stylegan_exp.data.synthetic import HAIR_COLORS, render_face, sample_face_params
from stylegan_exp.data.writer import pack_arrays

HAIR_TAGS = [f"{c}_hair" for c in HAIR_COLORS]
LABELS = LabelSpace([*HAIR_TAGS, "smile"], {"hair_color": HAIR_TAGS})


def face_labels(hair: str, mouth: str) -> list[float]:
    return [float(t == f"{hair}_hair") for t in HAIR_TAGS] + [float(mouth == "smile")]


def pack_labelled_faces(out: Path, count: int, resolution: int, seed: int = 0,
                        space: LabelSpace = LABELS) -> Path:
    images, labels = [], []
    for i in range(count):
        params = sample_face_params(np.random.default_rng([seed, i]))
        images.append(render_face(params, resolution))
        labels.append(face_labels(params.hair_color_name, params.mouth_style)[: space.dim])
    pack_arrays(np.stack(images), out, label_space=space, labels=labels)
    return out
