"""prepare's caches are keyed on their settings: a rerun with the same settings reuses (or continues) a
stage's folder; with other settings it moves the folder aside and redoes that stage and every later one,
saying which keys changed; a folder without a settings record (an older version's) is redone too. Also for
the stage CLIs and sharded runs."""

import json
import logging
from pathlib import Path

from conftest import compose_config

from stylegan_exp.data import clean, resize
from stylegan_exp.data.images import read_image_info
from stylegan_exp.data.manifest import Manifest
from stylegan_exp.data.prepare import run_prepare
from stylegan_exp.data.prepare_config import CleanConfig, RunOptions

SETTINGS_FILE = "settings.json"  # data/settings.py's record
QUIET = ["run.workers=1", "run.progress=false", "run.contact_sheet=false"]


def _redone(caplog) -> dict[str, str]:
    """The redo lines of the last run, by stage."""
    lines = [r.getMessage() for r in caplog.records if r.name == "stylegan_exp.data.settings"]
    caplog.clear()
    return {line.split(":", 1)[0]: line for line in lines}


def _sizes(folder: Path) -> set[int]:
    return {read_image_info(p).width for p in folder.glob("*.png") if p.name != "contact_sheet.png"}


def test_changed_settings_redo_that_stage_and_every_later_one(tmp_path, shared_data, caplog):
    caplog.set_level(logging.INFO)
    work, dataset = tmp_path / "work", tmp_path / "dataset"

    def prepare(*overrides: str) -> dict[str, int]:
        cfg = compose_config("prepare", "stages=[select,clean,dedupe,resize,pack]",
                             f"source={shared_data / 'anime_faces_256'}", f"work_dir={work}",
                             f"dataset_dir={dataset}", *QUIET, *overrides)
        return {r.stage: r.processed for r in run_prepare(cfg)}

    stages = ["select", "clean", "dedupe", "resize", "pack"]
    assert prepare("resize.resolution=32") == dict.fromkeys(stages, 10)
    assert prepare("resize.resolution=32") == dict.fromkeys(stages, 0)
    assert _redone(caplog) == {}

    assert prepare("resize.resolution=64") == {"select": 0, "clean": 0, "dedupe": 0, "resize": 10, "pack": 10}
    lines = _redone(caplog)
    assert set(lines) == {"resize", "pack"}
    assert all("(resize.resolution: 32 → 64)" in line for line in lines.values()), lines
    assert _sizes(work / "resize") == {64}  # Never mixed with the 32² ones, which are kept aside.
    (old,) = work.glob("resize.old-*")
    assert _sizes(old) == {32} and len(Manifest.read(old / "manifest.jsonl")) == 10
    assert json.loads((dataset / "dataset.json").read_text())["resolution"] == 64
    assert len(list(tmp_path.glob("dataset.old-*"))) == 1

    # A change up the chain reaches every stage below it.
    assert prepare("resize.resolution=64", "clean.min_size=100") == {
        "select": 0, "clean": 10, "dedupe": 10, "resize": 10, "pack": 10}
    lines = _redone(caplog)
    assert set(lines) == {"clean", "dedupe", "resize", "pack"}
    assert all("(clean.min_size: 64 → 100)" in line for line in lines.values()), lines

    # dedupe's own settings keep the per-image hashes, which depend on its input only.
    hashes = json.loads((work / "dedupe" / ".hashes" / SETTINGS_FILE).read_text())
    assert prepare("resize.resolution=64", "clean.min_size=100", "dedupe.max_distance=4")["dedupe"] == 10
    assert json.loads((work / "dedupe" / ".hashes" / SETTINGS_FILE).read_text()) == hashes
    assert "(dedupe.max_distance: 8 → 4)" in _redone(caplog)["dedupe"]
    assert len(list((shared_data / "anime_faces_256").iterdir())) == 10  # The source is never touched.


def test_a_folder_without_a_settings_record_is_redone(tmp_path, shared_data, caplog):
    """A stage folder written before settings were recorded: what made it is unknown, so it is redone."""
    src, dst = shared_data / "anime_faces_256", tmp_path / "clean"
    options = RunOptions(workers=1, progress=False, contact_sheet=False)
    assert clean.run(src, dst, CleanConfig(), options).processed == 10
    (dst / SETTINGS_FILE).unlink(missing_ok=True)  # As an older version left it.
    assert clean.run(src, dst, CleanConfig(), options).processed == 10
    line = _redone(caplog)["clean"]
    assert f"{dst} has no record of the settings that made it" in line
    assert f"moved it to {tmp_path / 'clean.old-unrecorded'}" in line
    assert (tmp_path / "clean.old-unrecorded" / "manifest.jsonl").is_file()
    assert clean.run(src, dst, CleanConfig(), options).processed == 0


def test_the_stage_cli_redoes_a_folder_made_with_other_settings_or_input(tmp_path, shared_data, caplog):
    faces = sorted((shared_data / "anime_faces_256").glob("*.png"))
    for name, files in (("a", faces[:3]), ("b", faces[3:5])):
        (tmp_path / name).mkdir()
        for f in files:
            (tmp_path / name / f.name).symlink_to(f)
    dst = tmp_path / "out"

    def cli(src: str, resolution: int) -> None:
        argv = [str(tmp_path / src), str(dst), "--resolution", str(resolution), "--no-progress"]
        assert resize.main([*argv, "--workers", "1"]) == 0

    cli("a", 32)
    cli("a", 32)
    assert _redone(caplog) == {} and _sizes(dst) == {32}
    cli("a", 64)
    assert "(resize.resolution: 32 → 64)" in _redone(caplog)["resize"] and _sizes(dst) == {64}
    cli("b", 64)
    line = _redone(caplog)["resize"]
    assert f"source: {tmp_path / 'a'} → {tmp_path / 'b'}" in line
    assert sorted(p.name for p in dst.glob("0*.png")) == ["03.png", "04.png"]  # b's only, not a's too


def test_sharded_reruns_redo_the_folder_once(tmp_path, shared_data, caplog):
    src, dst = shared_data / "anime_faces_256", tmp_path / "clean"

    def shards(min_size: int) -> list[int]:
        return [clean.run(src, dst, CleanConfig(min_size=min_size),
                          RunOptions(workers=1, progress=False, contact_sheet=False, shard_index=i,
                                     shard_count=2)).processed for i in range(2)]

    assert sum(shards(64)) == 10
    assert shards(64) == [0, 0]
    assert sum(shards(300)) == 10  # Every shard's part redone, in the one new folder.
    assert list(_redone(caplog)) == ["clean"]
    assert len(list(tmp_path.glob("clean.old-*"))) == 1
    entries = [e for p in dst.glob("manifest*.jsonl") for e in Manifest.read(p)]
    assert len(entries) == 10 and {e["reason"] for e in entries} == {"too-small"}


def test_a_stage_reading_its_own_kinds_folder_keeps_both_settings():
    """clean after clean: the input's keys move under `input.`, so a change up the chain is still seen."""
    from stylegan_exp.data.settings import changes, combine

    upstream = {"clean.min_size": 32, "source": "/a"}
    settings = combine({"clean.min_size": 64}, upstream)
    assert settings == {"clean.min_size": 64, "input.clean.min_size": 32, "input.source": "/a"}
    later = combine({"clean.min_size": 64}, {**upstream, "clean.min_size": 16})
    assert changes(settings, later) == "input.clean.min_size: 32 → 16"
