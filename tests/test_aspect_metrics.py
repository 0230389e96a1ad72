"""Metrics on rectangles: SWD's pyramid, FID/KID (Inception's graph resizes each image to 299×299 itself),
PR (images stretched to VGG16's 224×224, reals and fakes alike) and PPL's crop run on portraits."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from conftest import sha256, stand_in_perceptual, tiny_model

from stylegan_exp.aspect import parse_aspect
from stylegan_exp.config import MetricsConfig, NetworkFile, PPLConfig
from stylegan_exp.data.writer import pack_arrays
from stylegan_exp.metrics import networks as nets
from stylegan_exp.metrics.evaluate import Networks, evaluate
from stylegan_exp.metrics.ppl import face_region
from stylegan_exp.models import build_generator

PORTRAIT = parse_aspect("1:2")


@pytest.mark.slow
def test_every_metric_runs_on_portraits(tmp_path, inception_archive):
    data = tmp_path / "data"
    pack_arrays(np.random.RandomState(0).randint(0, 256, (24, 32, 16, 3), dtype=np.uint8), data,
                aspect=PORTRAIT)
    tf.random.set_seed(0)
    Gs = build_generator(tiny_model(), 16, 3, aspect=PORTRAIT)
    cfg = MetricsConfig(name="all", kinds=["swd", "fid", "kid", "pr", "ppl"], num_images=24, minibatch=8,
                        ppl=PPLConfig(num_samples=8, minibatch=4))
    cfg.fid.standard = NetworkFile(inception_archive.as_uri(), sha256(inception_archive))
    cfg.kid.num_subsets = 3
    cfg.swd.nhoods_per_image = 8
    seen = []

    def stand_in_vgg(images: np.ndarray) -> np.ndarray:
        seen.append(images.shape[1:3])
        return tf.reshape(tf.image.resize(images, (4, 4)), [len(images), -1]).numpy()

    cache = tmp_path / "cache"
    networks = Networks(inception=nets.inception_features(cfg.fid, cache, "FID/KID"),
                        vgg=("vgg-stand-in", stand_in_vgg), perceptual=stand_in_perceptual())
    results = evaluate(Gs, data, 16, cfg, cache, networks=networks)
    assert {"metrics/fid24", "metrics/kid24", "metrics/pr24_3_precision", "metrics/ppl_wend"} <= set(results)
    assert any(k.startswith("metrics/swd") for k in results)
    assert all(np.isfinite(v) for v in results.values())
    assert set(seen) == {(32, 16)}  # the feature networks get the whole portraits


def test_ppl_crop_takes_each_sides_share():
    images = tf.zeros([1, 64, 32, 3])
    assert face_region(images, crop=True).shape == (1, 32, 16, 3)
    assert face_region(tf.zeros([1, 64, 64, 3]), crop=True).shape == (1, 32, 32, 3)



def test_a_dataset_of_another_aspect_is_one_line(tmp_path):
    from stylegan_exp.metrics import MetricError

    pack_arrays(np.zeros((4, 16, 16, 3), np.uint8), tmp_path / "squares")
    Gs = build_generator(tiny_model(), 16, 3, aspect=PORTRAIT)
    with pytest.raises(MetricError, match=r"holds 1:1 images but the generator makes 1:2 ones"):
        evaluate(Gs, tmp_path / "squares", 16, MetricsConfig(name="swd", kinds=["swd"], num_images=4),
                 tmp_path / "cache")
