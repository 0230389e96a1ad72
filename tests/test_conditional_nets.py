"""Conditional networks (model.conditional): the mapping embeds the label, D projects on it; c_dim 0 makes
exactly the unconditional networks; snapshots carry the label space."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from stylegan_exp.data.dataset_format import LabelSpace
from stylegan_exp.models import (
    build_discriminator,
    build_generator,
    load_snapshot,
    model_config,
    network,
    save_snapshot,
)
from stylegan_exp.nets.labels import project
from stylegan_exp.nets.weights import shapes_by_path

TINY = {"name": "tiny", "fmap_base": 64, "fmap_max": 32, "latent_size": 16, "dlatent_size": 16,
        "mapping_layers": 2, "mapping_fmaps": 16}
LABELS = LabelSpace(["hair=black", "hair=blonde", "hair=red", "smile"],
                    {"hair": ["hair=black", "hair=blonde", "hair=red"]})


def _model(arch: str):
    return model_config(arch, TINY)


@pytest.mark.parametrize("arch", ["stylegan", "stylegan2"])
def test_label_weights_are_the_only_additions(arch):
    m = _model(arch)
    g0, g = shapes_by_path(build_generator(m, 16, 3)), shapes_by_path(build_generator(m, 16, 3, c_dim=4))
    d0 = shapes_by_path(build_discriminator(m, 16, 3))
    d = shapes_by_path(build_discriminator(m, 16, 3, c_dim=4))
    assert set(g) - set(g0) == {"mapping/embed/weight", "mapping/embed/bias"}
    assert g["mapping/dense/0/weight"] == (16 + 16, 16) and g0["mapping/dense/0/weight"] == (16, 16)
    assert {k for k in g0 if g0[k] != g[k]} == {"mapping/dense/0/weight"}
    assert all(k.startswith("label_mapping/") for k in set(d) - set(d0))
    out = "blocks/0/dense1" if arch == "stylegan" else "blocks/0/output"
    assert d0[f"{out}/weight"] == (32, 1) and d[f"{out}/weight"] == (32, 32)  # cmap_dim = nf(0)
    assert {k for k in d0 if d0[k] != d[k]} == {f"{out}/weight", f"{out}/bias"}


@pytest.mark.parametrize("arch", ["stylegan", "stylegan2"])
def test_labels_change_the_images_and_scores(arch):
    tf.random.set_seed(1)
    m = _model(arch)
    G, D = build_generator(m, 16, 3, c_dim=4), build_discriminator(m, 16, 3, c_dim=4)
    z = tf.random.normal([4, 16])
    c1 = tf.constant([[1, 0, 0, 1]] * 4, tf.float32)
    c2 = tf.constant([[0, 0, 1, 0]] * 4, tf.float32)
    x1, x2 = G(z, c=c1, randomize_noise=False), G(z, c=c2, randomize_noise=False)
    assert float(tf.reduce_max(tf.abs(x1 - x2))) > 1e-4
    assert np.allclose(G(z, c=c1, randomize_noise=False), x1)
    s1, s2 = D(x1, c=c1), D(x1, c=c2)
    assert s1.shape == (4,) and float(tf.reduce_max(tf.abs(s1 - s2))) > 1e-6
    with pytest.raises(ValueError, match="conditional on 4 labels"):
        G(z)
    with pytest.raises(ValueError, match="conditional on 4 labels"):
        D(x1)


def test_projection_is_the_scaled_dot_product():
    features = tf.constant([[1.0, 2.0, 3.0, 4.0]])
    cmap = tf.constant([[0.5, -1.0, 0.0, 2.0]])
    assert np.isclose(float(project(features, cmap)[0]), (0.5 - 2.0 + 8.0) / 2.0)


@pytest.mark.parametrize("arch", ["stylegan", "stylegan2"])
def test_snapshot_keeps_the_label_space(tmp_path, arch):
    m = _model(arch)
    nets = {"G": build_generator(m, 16, 3, c_dim=4), "D": build_discriminator(m, 16, 3, c_dim=4),
            "Gs": build_generator(m, 16, 3, c_dim=4)}
    path = save_snapshot(tmp_path / "s.npz", nets, model=m, resolution=16, num_channels=3, kimg=1.0,
                         labels=LABELS)
    snap = load_snapshot(path)
    assert snap.labels.names == LABELS.names and snap.labels.groups == LABELS.groups and snap.c_dim == 4
    Gs = network(snap, "Gs")
    z, c = tf.random.normal([2, 16]), tf.one_hot([0, 2], 4)
    assert np.allclose(Gs(z, c=c, randomize_noise=False), nets["Gs"](z, c=c, randomize_noise=False))
    plain_nets = {"G": build_generator(m, 16, 3), "D": build_discriminator(m, 16, 3),
                  "Gs": build_generator(m, 16, 3)}
    plain = save_snapshot(tmp_path / "u.npz", plain_nets, model=m, resolution=16, num_channels=3, kimg=1.0)
    assert load_snapshot(plain).labels is None
