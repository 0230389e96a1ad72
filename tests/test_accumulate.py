"""Gradient accumulation: k micro-batches make the same update as one step on the k× minibatch."""

import pytest
import tensorflow as tf
from test_distribute import compare

from stylegan_exp.models import build_discriminator, build_generator
from stylegan_exp.models.stylegan.config import StyleGANConfig
from stylegan_exp.models.stylegan.training import StyleGANSteps


@pytest.mark.slow
def test_two_micro_batches_equal_one_double_batch():
    diffs = compare(tf.distribute.get_strategy(), accumulate=2)  # micro-batches of 4 = the mbstd group
    assert diffs["replicas"] == 1
    assert all(diffs[k] < 1e-5 for k in ("loss/D", "loss/R1", "score/real", "score/fake", "loss/G")), diffs
    assert diffs["D"] < 1e-6 and diffs["G"] < 1e-6, diffs


def test_accumulate_must_be_positive():
    model = StyleGANConfig(name="tiny", fmap_base=16, fmap_decay=1.0, fmap_max=8, latent_size=8,
                           dlatent_size=8, mapping_layers=1, mapping_fmaps=8, mapping_lrmul=0.01,
                           use_noise=False, fused_scale_min_res=128, mbstd_group_size=4, mbstd_num_features=1)
    G, D, Gs = build_generator(model, 4), build_discriminator(model, 4), build_generator(model, 4)
    with pytest.raises(ValueError, match="schedule.accumulate"):
        StyleGANSteps(G, D, Gs, model, seed=0, accumulate=0)
