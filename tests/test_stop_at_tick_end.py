"""A stop signal that arrives in the training step that ends a tick ends that tick as the uninterrupted run
does: the tick is complete, so a resumed run starts the next one there (found by the exact-resume test when
SIGINT fell on a tick's last step: the resumed run continued the finished tick, ending it a step late)."""

import os
import signal

import pytest

from stylegan_exp.train.loop import Trainer

TICK_NIMG = 64


@pytest.mark.slow
def test_a_stop_on_a_ticks_last_step_completes_the_tick(tiny_cfg, tmp_path):
    cfg = tiny_cfg("schedule.lod_initial_resolution=16", f"schedule.tick_kimg_base={TICK_NIMG / 1000}",
                   "run.checkpoint_kimg=100")
    trainer = Trainer(cfg, tmp_path / "run")
    iteration = trainer.steps.iteration

    def stopped_at_tick_end(*args):
        stats, shown = iteration(*args)
        if trainer.state.nimg < TICK_NIMG <= trainer.state.nimg + shown:
            os.kill(os.getpid(), signal.SIGTERM)
        return stats, shown

    trainer.steps.iteration = stopped_at_tick_end
    trainer.run()
    assert trainer.stop_signal == signal.SIGTERM
    assert trainer.state.nimg >= TICK_NIMG
    assert (trainer.state.tick, trainer.state.tick_start_nimg) == (1, trainer.state.nimg)
