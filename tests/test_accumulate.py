"""Gradient accumulation: k micro-batches make the same update as one step on the k× minibatch, for each
architecture, with and without augmentation (its draws are made for the whole batch and split like the
latents; ADA's p is adjusted alike)."""

import pytest
from conftest import tiny_model
from split_steps import assert_equal_steps, compare

from stylegan_exp.models import build_discriminator, build_generator
from stylegan_exp.models.stylegan.training import StyleGANSteps


@pytest.mark.slow
@pytest.mark.parametrize(("arch", "augment"), [("stylegan", None), ("stylegan", "ada"),
                                               ("stylegan", "diffaugment"), ("stylegan2", "ada")])
def test_two_micro_batches_equal_one_double_batch(arch, augment):
    diffs = compare(accumulate=2, augment=augment, arch=arch)  # micro-batches of 4 = the mbstd group
    assert diffs["replicas"] == 1
    assert_equal_steps(diffs, arch, augment)
    if arch == "stylegan2":  # ADA reaches StyleGAN2's D through every D call (main step and lazy R1)
        assert diffs["augment/rt"] < 1e-6, diffs


def test_accumulate_must_be_positive():
    model = tiny_model()
    G, D, Gs = build_generator(model, 4), build_discriminator(model, 4), build_generator(model, 4)
    with pytest.raises(ValueError, match="schedule.accumulate"):
        StyleGANSteps(G, D, Gs, model, seed=0, accumulate=0)
