"""A real (tiny) training run in wandb offline mode, read back: every key at kimg steps, images, SWD."""

import json

import numpy as np
from test_resume import tiny_cfg

from stylegan_exp.tracking import offline_history
from stylegan_exp.train.loop import Trainer

TICK_KEYS = {"loss/G", "loss/D", "loss/R1", "lr/G", "lr/D", "lod", "resolution", "minibatch", "sec_per_kimg",
             "img_per_sec", "memory_gb", "tick"}


def test_offline_wandb_history_matches_metrics_jsonl(tmp_path):
    cfg = tiny_cfg(tmp_path, "logger=wandb_offline", "metrics=swd", "metrics.num_images=64",
                   "metrics.interval_ticks=1", "metrics.swd.nhoods_per_image=16", "schedule.total_kimg=0.9")
    run_dir = tmp_path / "run"
    Trainer(cfg, run_dir).run()

    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
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
