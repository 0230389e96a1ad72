"""End to end through Hydra: the session's tiny StyleGAN train.py run at 16×16 and sample.py from its snapshot
(resume=latest of a train.py run: test_resume.py)."""

import numpy as np
from conftest import run_script
from PIL import Image

from stylegan_exp.models import load_snapshot


def test_train_then_sample(stylegan_run, stylegan_samples, tmp_path):
    run_dir = stylegan_run.run_dir
    resolved = (run_dir / "config.yaml").read_text()
    assert "${" not in resolved and "total_kimg: 1.2" in resolved

    ticks = stylegan_run.ticks
    assert [r["tick"] for r in ticks] == list(range(1, len(ticks) + 1))
    assert ticks[0]["resolution"] == 8 and ticks[-1]["resolution"] == 16
    assert ticks[0]["lod"] == 1.0 and ticks[-1]["lod"] < 1.0
    assert all(np.isfinite(r["loss/G"]) and np.isfinite(r["loss/D"]) for r in ticks)
    expected_keys = {"lr/G", "lr/D", "minibatch", "sec_per_kimg", "img_per_sec", "memory_gb", "loss/R1"}
    assert expected_keys <= set(ticks[0])

    fakes = sorted(run_dir.glob("fakes*.png"))
    # Named by whole kimg as the original; a later grid within a kimg that has one gets its images appended,
    # so no grid is overwritten at any tick size.
    nimgs = [0] + [round(r["kimg"] * 1000) for r in ticks]
    expected = [f"fakes{n // 1000:06d}" + (f"_{n % 1000:03d}" if i and n // 1000 == nimgs[i - 1] // 1000
                                             else "") + ".png" for i, n in enumerate(nimgs)]
    assert [f.name for f in fakes] == sorted(expected) and len(fakes) == len(nimgs)
    assert Image.open(fakes[-1]).size == (4 * 16, 2 * 16)
    assert (run_dir / "reals.png").is_file()
    assert list((run_dir / "wandb").glob("offline-run-*"))  # tracked offline

    snapshot = stylegan_run.snapshots[-1]
    snap = load_snapshot(snapshot)
    assert snap.resolution == 16 and snap.kimg >= 1.2 and snap.model.fmap_max == 16
    assert (run_dir / "checkpoints" / "checkpoint").is_file()

    images = [np.asarray(Image.open(stylegan_samples.folder / f"example-{s}.png")) for s in (3, 5, 7)]
    assert all(im.shape == (16, 16, 3) for im in images)
    assert not np.array_equal(images[0], images[1])

    # Same seed → same image (fixed noise), from an explicit snapshot path.
    run_script("sample.py", "seeds=[3]", "truncation_psi=0.5", f"snapshot={snapshot}",
               "hydra.run.dir=" + str(tmp_path / "again"), cwd=tmp_path)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "again" / "example-3.png")), images[0])
