"""The session's tiny training run in wandb offline mode, read back: every key at kimg steps, images, SWD."""

import numpy as np
from conftest import metrics_rows

from stylegan_exp.tracking import offline_history

TICK_KEYS = {"loss/G", "loss/D", "loss/R1", "lr/G", "lr/D", "lod", "resolution", "minibatch", "sec_per_kimg",
             "img_per_sec", "memory_gb", "tick"}


def test_offline_wandb_history_matches_metrics_jsonl(stylegan_run):
    run_dir = stylegan_run.run_dir
    rows = metrics_rows(run_dir)
    ticks = [r for r in rows if "tick" in r]
    swd = [r for r in rows if "metrics/swd_mean" in r]
    assert swd and all(np.isfinite(r["metrics/swd_mean"]) and r["metrics/swd_mean"] > 0 for r in swd)
    assert all(r["kimg"] >= 0.3 for r in swd)  # only once at the final resolution (16² from lod < 1)

    history = offline_history(run_dir)
    wb_ticks = [h for h in history if "tick" in h]
    assert [h["kimg"] for h in wb_ticks] == [r["kimg"] for r in ticks]
    for h, r in zip(wb_ticks, ticks, strict=True):
        assert set(h) >= TICK_KEYS
        assert h["loss/G"] == r["loss/G"] and h["lod"] == r["lod"]
    images = [h for h in history if "fakes/_type" in h]
    assert len(images) == len([r for r in rows if "fakes" in r]) and images[0]["fakes/_type"] == "image-file"
    assert [h["metrics/swd_mean"] for h in history if "metrics/swd_mean" in h] == [r["metrics/swd_mean"]
                                                                                   for r in swd]
    assert list(run_dir.glob("wandb/offline-run-*/files/media/images/fakes_*.png"))
