"""After a short training run, the discriminator ranks real faces above noise (train.py, then task=rank)."""

import csv
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY
from conftest import run_script as run

from stylegan_exp.data.images import save_image
from stylegan_exp.data.synthetic import render_faces

# The integration test's tiny model, trained at 16² from the start (no growing) for 1.2 kimg.
TINY_16 = [*TINY, "logger=none", "dataset.synthetic.count=256", "schedule.lod_initial_resolution=16",
           "schedule.tick_kimg_base=0.2", "schedule.network_snapshot_ticks=100", "schedule.total_kimg=1.2",
           "gpus.minibatch_dict={16: 16}", "grid.width=2", "grid.height=2"]


@pytest.mark.slow
def test_rank_puts_real_images_above_noise(tmp_path):
    out = tmp_path / "outputs"
    run("train.py", *TINY_16, f"outputs_root={out}", f"dataset.path={tmp_path / 'synthetic-16'}",
        cwd=tmp_path)
    folder = tmp_path / "to-rank"
    folder.mkdir()
    for i, face in enumerate(render_faces(12, 32, seed=99, progress=False)):  # unseen faces, resized by rank
        save_image(face, folder / f"real-{i:02d}.png")
    rng = np.random.RandomState(0)
    for i in range(4):
        # At the snapshot's 16² (resizing would average the noise into smooth grey).
        save_image(rng.randint(0, 256, (16, 16, 3)).astype(np.uint8), folder / f"noise-{i}.png")
    run("sample.py", "name=tiny", f"outputs_root={out}", "task=rank", f"task.folder={folder}",
        "task.reject_percent=25", cwd=tmp_path)
    (sample_dir,) = (out / "tiny").glob("samples-rank-*")
    rows = list(csv.DictReader((sample_dir / "ranking.csv").open()))
    assert [Path(r["path"]).name.split("-")[0] for r in rows] == ["real"] * 12 + ["noise"] * 4
    assert sorted(p.name for p in (folder / "rejected").iterdir()) == [f"noise-{i}.png" for i in range(4)]
    assert (sample_dir / "ranking-sheet.png").is_file()
