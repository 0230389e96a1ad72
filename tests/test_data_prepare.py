"""prepare.py: the composed config is typed (typos fail naming the key), stages chain, bad input is
one line, and a stage killed mid-way resumes to the same result."""

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, compose_config
from hydra.errors import ConfigCompositionException

from stylegan_exp.data.manifest import Manifest, StageError, in_shard
from stylegan_exp.data.prepare import run_prepare


def _compose(overrides: list[str]):
    return compose_config("prepare", *overrides)


def test_typo_in_a_key_fails_naming_it():
    with pytest.raises(ConfigCompositionException, match="min_face_sise"):
        _compose(["crop.min_face_sise=3"])
    cfg = _compose(["prepare/resize=r256", "prepare/dedupe=strict"])
    assert cfg.resize.resolution == 256 and cfg.dedupe.max_distance == 4


def test_bad_stages_and_missing_source_are_one_line(tmp_path):
    with pytest.raises(StageError, match="'crap'"):
        run_prepare(_compose(["stages=[crop,crap]", f"source={tmp_path}"]))
    with pytest.raises(StageError, match="out of order"):
        run_prepare(_compose(["stages=[clean,crop]", f"source={tmp_path}"]))
    with pytest.raises(StageError, match="nowhere"):
        run_prepare(_compose(["stages=[clean]", f"source={tmp_path / 'nowhere'}"]))


def test_shards_partition_the_items():
    keys = [f"img{i}.png" for i in range(1000)]
    counts = [sum(in_shard(k, i, 4) for k in keys) for i in range(4)]
    assert sum(counts) == 1000 and min(counts) > 200


def test_stages_chain_through_the_work_dir(tmp_path, shared_data):
    cfg = _compose(
        [
            "stages=[select,clean,dedupe,resize,augment]",
            f"source={shared_data / 'anime_faces_256'}",
            f"work_dir={tmp_path}",
            "resize.resolution=64",
            "augment.copies=1",
            "run.workers=1",
            "run.progress=false",
        ]
    )
    results = run_prepare(cfg)
    assert [r.stage for r in results] == ["select", "clean", "dedupe", "resize", "augment"]
    assert results[1].kept == 10 and results[-1].kept == 2 * results[2].kept
    for stage in ("clean", "dedupe", "resize", "augment"):
        assert (tmp_path / stage / "contact_sheet.png").is_file()


def test_truncated_manifest_lines_are_redone(tmp_path):
    path = tmp_path / "manifest.jsonl"
    path.write_text(
        '{"source": "a", "output": "a_0", "kept": true, "reason": "face", "parts": 2}\n'
        '{"source": "b", "output": null, "kept": false, "reason": "no-face", "parts": 1}\n'
        '{"source": "c", "outp'
    )
    manifest = Manifest(path)
    manifest.close()
    assert manifest.done == {"b"}  # "a" has 1 of its 2 lines, "c" a cut-off line.
    assert path.read_text().count("\n") == 1


@pytest.mark.slow
def test_killed_stage_resumes_to_the_same_result(tmp_path, shared_data):
    src = tmp_path / "list.txt"  # 400 of the 64px faces (with their exact duplicates).
    files = sorted((shared_data / "anime_faces_64").glob("*.jpg"))[:400]
    src.write_text("".join(f"{path}\n" for path in files))
    cmd = [sys.executable, "-m", "stylegan_exp.data.clean", str(src)]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    subprocess.run(
        [*cmd, str(tmp_path / "once"), "--no-progress", "--workers", "1"],
        env=env,
        check=True,
        capture_output=True,
    )
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [*cmd, str(killed), "--no-progress", "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    manifest = killed / "manifest.jsonl"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not manifest.exists() or manifest.read_text().count("\n") < 100):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = manifest.read_text().count("\n")
    assert 100 <= done < 400
    subprocess.run(
        [*cmd, str(killed), "--no-progress", "--workers", "1"], env=env, check=True, capture_output=True
    )
    assert manifest.read_text() == (tmp_path / "once" / "manifest.jsonl").read_text()
    for path in (tmp_path / "once").glob("*.png"):
        if path.name != "contact_sheet.png":
            assert (killed / path.name).read_bytes() == path.read_bytes()


def test_cli_errors_are_one_line(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-m", "stylegan_exp.data.clean", str(tmp_path / "nowhere"), str(tmp_path / "out")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"error: input {tmp_path / 'nowhere'} does not exist"]
