"""Schedule math against values worked out by hand from REFERENCE.md."""

import pytest

from stylegan_exp.config import GpusConfig, ScheduleConfig
from stylegan_exp.resolution import log2_int
from stylegan_exp.schedule import ORIGINAL_TICK_KIMG, gs_beta, lod_changed, training_schedule

PAPER_LR = {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}
ONE_GPU = dict(minibatch_base=4,
               minibatch_dict={4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4})


def paper(**kw) -> tuple[ScheduleConfig, GpusConfig, int]:
    """The paper schedule on one GPU at 512² (what `training_schedule` takes after cur_nimg)."""
    sched = ScheduleConfig(name="paper", lod_initial_resolution=8, G_lrate_dict=PAPER_LR,
                           D_lrate_dict=PAPER_LR, tick_kimg_dict=dict(ORIGINAL_TICK_KIMG), **kw)
    return sched, GpusConfig(name="1gpu", **ONE_GPU), 512


@pytest.mark.parametrize(
    ("kimg", "lod", "res", "minibatch", "lrate"),
    [
        # log2(512)=9, floor(log2(8))=3 → lod starts at 6 (8×8).
        (0, 6.0, 8, 128, 0.001),
        (599.999, 6.0, 8, 128, 0.001),
        # Fading toward 16×16: 300 kimg into a 600 kimg transition → lod 5.5, still traced at 16.
        (900, 5.5, 16, 128, 0.001),
        (1200, 5.0, 16, 128, 0.001),
        # Phase 3 (kimg 3600..4800): 128×128 after its transition.
        (4200, 3.0, 64, 32, 0.001),
        (4500, 2.5, 128, 16, 0.0015),
        (6000, 1.0, 256, 8, 0.002),
        (7000, 1.0 - 400 / 600, 512, 4, 0.003),
        # Past the last phase lod is clamped at 0: full resolution.
        (8400, 0.0, 512, 4, 0.003),
        (25000, 0.0, 512, 4, 0.003),
    ],
)
def test_paper_schedule_points(kimg, lod, res, minibatch, lrate):
    s = training_schedule(int(kimg * 1000), *paper())
    assert s.lod == pytest.approx(lod)
    assert s.resolution == res
    assert s.minibatch == minibatch
    assert s.G_lrate == pytest.approx(lrate) and s.D_lrate == pytest.approx(lrate)
    assert s.tick_kimg == ORIGINAL_TICK_KIMG[res]


def test_fade_is_fractional_lod_and_level_is_traced_resolution():
    s = training_schedule(900_000, *paper())
    assert s.fade == pytest.approx(0.5)
    assert s.level == 4


def test_minibatch_rounded_to_gpus_and_capped():
    gpus = GpusConfig(name="3gpu", num_gpus=3, minibatch_base=16, minibatch_dict={8: 31},
                      max_minibatch_per_gpu={8: 5})
    p = ScheduleConfig(name="s", lod_initial_resolution=8)
    assert training_schedule(0, p, gpus, 64).minibatch == 15  # 31 → 30 (multiple of 3) → cap 5·3 = 15
    p2 = ScheduleConfig(name="s", lod_initial_resolution=64)
    gpus2 = GpusConfig(name="3gpu", num_gpus=3, minibatch_base=16)
    assert training_schedule(0, p2, gpus2, 64).minibatch == 15


def test_lrate_rampup():
    p = paper(lrate_rampup_kimg=100)
    assert training_schedule(25_000, *p).G_lrate == pytest.approx(0.001 * 0.25)
    assert training_schedule(200_000, *p).D_lrate == pytest.approx(0.001)


def test_transfer_resume_kimg_starts_at_full_resolution():
    s = training_schedule(7200 * 1000, *paper())
    assert (s.lod, s.resolution) == (0.0, 512)


def test_lod_changed_only_when_layers_appear():
    assert lod_changed(-1.0, 6.0)
    assert not lod_changed(6.0, 6.0)
    assert lod_changed(6.0, 5.9)  # ceil stays 6 but floor drops: the 16×16 layers fade in
    assert not lod_changed(5.9, 5.5)
    assert lod_changed(5.1, 5.0)


def test_gs_beta_half_life():
    assert gs_beta(10_000, 10) == pytest.approx(0.5)
    assert gs_beta(32, 10) == pytest.approx(0.5 ** (32 / 10_000))
    assert gs_beta(32, 0) == 0.0


def test_gs_beta_ramps_up_its_half_life_with_the_images_shown():
    assert gs_beta(32, 10, 0.05, nimg=0) == 0.0  # Gs copies G at the first step
    assert gs_beta(32, 10, 0.05, nimg=100_000) == pytest.approx(0.5 ** (32 / 5000))
    assert gs_beta(32, 10, 0.05, nimg=200_000) == gs_beta(32, 10, 0.05, nimg=10**7) == gs_beta(32, 10)


@pytest.mark.parametrize("bad", [0, 2, 3, 48, 100])
def test_log2_int_rejects_non_powers(bad):
    with pytest.raises(ValueError, match=str(bad)):
        log2_int(bad)
