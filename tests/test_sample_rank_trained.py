"""After a short training run, the discriminator ranks real faces above noise (the session's train.py run,
then task=rank)."""

import csv
from pathlib import Path

import numpy as np
from conftest import run_task

from stylegan_exp.data.images import save_image
from stylegan_exp.data.synthetic import render_faces


def test_rank_puts_real_images_above_noise(stylegan_run, tmp_path):
    folder = tmp_path / "to-rank"
    folder.mkdir()
    for i, face in enumerate(render_faces(12, 32, seed=99, progress=False)):  # unseen faces, resized by rank
        save_image(face, folder / f"real-{i:02d}.png")
    rng = np.random.RandomState(0)
    for i in range(4):
        # At the snapshot's 16² (resizing would average the noise into smooth grey).
        save_image(rng.randint(0, 256, (16, 16, 3)).astype(np.uint8), folder / f"noise-{i}.png")
    csv_path, sheet = run_task(stylegan_run.snapshots[-1], tmp_path / "rank", "task=rank",
                               f"task.folder={folder}", "task.reject_percent=25")
    rows = list(csv.DictReader(csv_path.open()))
    assert [Path(r["path"]).name.split("-")[0] for r in rows] == ["real"] * 12 + ["noise"] * 4
    assert sorted(p.name for p in (folder / "rejected").iterdir()) == [f"noise-{i}.png" for i in range(4)]
    assert sheet.name == "ranking-sheet.png" and sheet.is_file()
