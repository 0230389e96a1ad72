"""End to end through Hydra: train a tiny StyleGAN at 16×16, sample from its snapshot, resume it."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY
from conftest import run_script as run
from PIL import Image

from stylegan_exp.models import load_snapshot


def run_dirs(root: Path, experiment: str) -> list[Path]:
    return sorted(p for p in (root / experiment).iterdir() if p.is_dir() and not p.name.startswith("samples"))


@pytest.mark.slow
def test_train_sample_resume(tmp_path):
    out = tmp_path / "outputs"
    common = [*TINY, f"outputs_root={out}", f"dataset.path={tmp_path / 'synthetic-16'}"]
    run("train.py", *common, "schedule.total_kimg=1.2", cwd=tmp_path)
    (run_dir,) = run_dirs(out, "tiny")

    resolved = (run_dir / "config.yaml").read_text()
    assert "${" not in resolved and "total_kimg: 1.2" in resolved

    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    ticks = [r for r in rows if "tick" in r]
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

    snapshot = sorted(run_dir.glob("network-snapshot-*.npz"))[-1]
    snap = load_snapshot(snapshot)
    assert snap.resolution == 16 and snap.kimg >= 1.2 and snap.model.fmap_max == 16
    assert (run_dir / "checkpoints" / "checkpoint").is_file()

    run("sample.py", "name=tiny", f"outputs_root={out}", "seeds=[3,5,7]", "truncation_psi=0.5",
        cwd=tmp_path)
    (sample_dir,) = (out / "tiny").glob("samples-*")
    images = [np.asarray(Image.open(sample_dir / f"example-{s}.png")) for s in (3, 5, 7)]
    assert all(im.shape == (16, 16, 3) for im in images)
    assert not np.array_equal(images[0], images[1])

    # Same seed → same image (fixed noise), from an explicit snapshot path.
    run("sample.py", "name=tiny", f"outputs_root={out}", "seeds=[3]", "truncation_psi=0.5",
        f"snapshot={snapshot}", "hydra.run.dir=" + str(tmp_path / "again"), cwd=tmp_path)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "again" / "example-3.png")), images[0])

    # resume=latest continues kimg, ticks and the fakes numbering from the checkpoint.
    run("train.py", *common, "schedule.total_kimg=1.8", "resume=latest", cwd=tmp_path)
    new_dir = [d for d in run_dirs(out, "tiny") if d != run_dir][0]
    new_rows = [json.loads(line) for line in (new_dir / "metrics.jsonl").read_text().splitlines()]
    new_ticks = [r for r in new_rows if "tick" in r]
    assert new_ticks[0]["tick"] == ticks[-1]["tick"] + 1
    assert new_ticks[0]["kimg"] > ticks[-1]["kimg"] and new_ticks[-1]["kimg"] >= 1.8
    assert not (new_dir / "fakes000000.png").exists()
    # …and the same wandb run id, so the dashboard's curves continue.
    (first_run,) = (run_dir / "wandb").glob("offline-run-*")
    (resumed_run,) = (new_dir / "wandb").glob("offline-run-*")
    assert first_run.name.rsplit("-", 1)[1] == resumed_run.name.rsplit("-", 1)[1]
