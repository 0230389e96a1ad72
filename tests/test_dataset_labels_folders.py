"""Plain folders get labels from a sidecar (labels.csv / labels.json) or their sub-folder names, in the
dataset tool (`python -m stylegan_exp.data.records SRC DST --labels …`, strict: one line refusing) and in
prepare's pack stage (lenient: an image without labels is skipped with its reason)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import compose_config

from stylegan_exp.data import pack, records
from stylegan_exp.data.manifest import Manifest, StageError
from stylegan_exp.data.prepare import run_prepare
from stylegan_exp.data.reader import load_info

FACES = ["36437_2012.jpg", "24438_2009.jpg", "31456_2010.jpg", "32992_2011.jpg", "30847_2010.jpg"]
TAGS = {"a.jpg": "smile blonde_hair", "b.jpg": "blonde_hair", "c.jpg": "smile red_hair", "d.jpg": "red_hair",
        "e.jpg": "smile glasses blonde_hair"}


def _stored(dataset: Path) -> np.ndarray:
    info = load_info(dataset)
    return np.array([tf.train.Example.FromString(raw.numpy()).features.feature["labels"].float_list.value
                     for raw in tf.data.TFRecordDataset([str(dataset / s.file) for s in info.shards])])


@pytest.fixture
def folder(tmp_path, shared_data) -> Path:
    """Five real 64² faces a.jpg … e.jpg and a labels.csv with their tags."""
    src = tmp_path / "faces"
    src.mkdir()
    for name, face in zip(TAGS, FACES, strict=True):
        shutil.copy(shared_data / "anime_faces_64" / face, src / name)
    (src / "labels.csv").write_text("file,tags\n" + "".join(f"{k},{v}\n" for k, v in TAGS.items()))
    return src


def _tool(capsys, *argv: str) -> tuple[int, str, str]:
    code = records.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_tool_packs_sidecar_tags_top_k(folder, tmp_path, capsys):
    code, out, _ = _tool(capsys, folder, tmp_path / "ds", "--labels", "sidecar", "--min-count", "2",
                         "--top-k", "2", "--label-groups", "hair=blonde_hair,red_hair")
    assert code == 0 and "packed 5 images" in out and "3 labels" in out
    info = load_info(tmp_path / "ds")
    # The group's tags, then the top-k others on at least 2 images: smile (glasses is on 1).
    assert info.labels.names == ["blonde_hair", "red_hair", "smile"] and info.labels.counts == [3, 2, 3]
    stored = _stored(tmp_path / "ds")  # a … e, in name order
    np.testing.assert_array_equal(stored, [[1, 0, 1], [1, 0, 0], [0, 1, 1], [0, 1, 0], [1, 0, 1]])


def test_tool_classes_from_sub_folders_and_a_json_sidecar(tmp_path, shared_data, capsys):
    src = tmp_path / "classes"
    for i, face in enumerate(FACES):
        (src / ("cats" if i % 2 else "dogs")).mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_data / "anime_faces_64" / face, src / ("cats" if i % 2 else "dogs") / f"{i}.jpg")
    assert _tool(capsys, src, tmp_path / "ds", "--labels", "folders")[0] == 0
    info = load_info(tmp_path / "ds")
    assert info.labels.names == ["cats", "dogs"] and info.labels.groups == {"class": ["cats", "dogs"]}
    np.testing.assert_array_equal(_stored(tmp_path / "ds"), [[1, 0], [1, 0], [0, 1], [0, 1], [0, 1]])
    sidecar = tmp_path / "classes.json"
    sidecar.write_text(json.dumps({f"{'cats' if i % 2 else 'dogs'}/{i}.jpg": i % 3 for i in range(5)}))
    assert _tool(capsys, src, tmp_path / "ds2", "--labels", "sidecar", "--label-file", sidecar)[0] == 0
    assert load_info(tmp_path / "ds2").labels.names == ["0", "1", "2"]


@pytest.mark.parametrize(("change", "extra", "message"), [
    (lambda f: (f / "labels.csv").write_text((f / "labels.csv").read_text() + "gone.jpg,smile\n"), [],
     "labels.csv names 1 file not in .*faces: gone.jpg"),
    (lambda f: shutil.copy(f / "a.jpg", f / "new.jpg"), [],
     "1 image cannot be labelled: new.jpg has no entry in labels.csv"),
    (lambda f: None, ["--vocabulary", "smile", "glases"], "unknown tag glases: no image has it"),
    (lambda f: None, ["--min-count", "9"], "the label vocabulary is empty: no tag is on at least 9 images"),
    (lambda f: None, ["--label-groups", "hair=blonde_hair,glasses"],
     "3 images cannot be labelled: c.jpg has none of group 'hair' .*; e.jpg has 2 tags of group 'hair'"),
    (lambda f: (f / "labels.csv").unlink(), [], "has neither of labels.csv and labels.json"),
])
def test_tool_bad_labels_are_one_line_and_write_nothing(folder, tmp_path, capsys, change, extra, message):
    change(folder)
    code, out, err = _tool(capsys, folder, tmp_path / "ds", "--labels", "sidecar", "--min-count", "1", *extra)
    assert code == 1 and err.count("\n") == 1 and err.startswith("error: ")
    assert re.search(message, err), err
    assert not (tmp_path / "ds").exists()


def test_prepare_pack_skips_a_file_without_entry_with_its_reason(folder, tmp_path):
    shutil.copy(folder / "a.jpg", folder / "z.jpg")
    cfg = compose_config("prepare", f"source={folder}", f"work_dir={tmp_path / 'w'}",
                         f"dataset_dir={tmp_path / 'ds'}", "stages=[pack]", "pack.labels=sidecar",
                         "pack.vocabulary=[smile,red_hair]", "run.progress=false", "run.contact_sheet=false")
    result = run_prepare(cfg)[0]
    assert result.kept == 5 and result.reasons[(False, "labels")] == 1
    entries = {Path(e["source"]).name: e for e in Manifest.read(tmp_path / "ds" / "manifest.jsonl")}
    assert entries["z.jpg"]["error"] == "has no entry in labels.csv"
    assert entries["c.jpg"]["labels"] == ["smile", "red_hair"] and entries["b.jpg"]["labels"] == []
    np.testing.assert_array_equal(_stored(tmp_path / "ds"), [[1, 0], [0, 0], [1, 1], [0, 1], [1, 0]])
    # A changed sidecar changes the labels: the pack is redone, the old dataset moved aside.
    (folder / "labels.csv").write_text((folder / "labels.csv").read_text() + "z.jpg,smile\n")
    assert run_prepare(cfg)[0].kept == 6


def test_pack_cli_sub_folder_classes_and_bad_source(tmp_path, shared_data, capsys):
    src = tmp_path / "src"
    for i, face in enumerate(FACES[:4]):
        (src / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_data / "anime_faces_64" / face, src / f"c{i % 2}" / f"{i}.jpg")
    shutil.copy(shared_data / "anime_faces_64" / FACES[4], src / "loose.jpg")
    assert pack.main([str(src), str(tmp_path / "ds"), "--labels", "folders", "--no-progress",
                      "--no-contact-sheet"]) == 0
    lines = {Path(e["source"]).name: e for e in Manifest.read(tmp_path / "ds" / "manifest.jsonl")}
    assert lines["loose.jpg"]["error"] == "is not in a sub-folder (its class)"
    assert load_info(tmp_path / "ds").labels.groups == {"class": ["c0", "c1"]}
    with pytest.raises(StageError, match="pack.labels=sidecar: .*src has neither of labels.csv"):
        pack.run(str(src), tmp_path / "ds2", pack.PackConfig(labels="sidecar"), pack.RunOptions())


def _chain(folder: Path, tmp_path: Path, *extra: str):
    return compose_config("prepare", f"source={folder}", f"work_dir={tmp_path / 'w'}",
                          f"dataset_dir={tmp_path / 'ds'}", "stages=[select,resize,augment,pack]",
                          "resize.resolution=32", "augment.copies=1", "run.workers=1", "run.progress=false",
                          "run.contact_sheet=false", *extra)


def test_a_sidecar_given_to_select_travels_to_pack(folder, tmp_path):
    cfg = _chain(folder, tmp_path, f"select.label_file={folder / 'labels.csv'}", "pack.labels=tags",
                 "pack.vocabulary=[smile]", "+pack.label_groups.hair=[blonde_hair,red_hair]")
    run_prepare(cfg)
    augmented = [e for e in Manifest.read(tmp_path / "w" / "augment" / "manifest.jsonl") if e["kept"]]
    assert {e["output"]: e["tags"] for e in augmented}["c_aug0.png"] == ["smile", "red_hair"]
    # a, a_aug0, b, b_aug0 … e, e_aug0 (names sorted), each the vector of its file's row.
    rows = {"a": [1, 0, 1], "b": [1, 0, 0], "c": [0, 1, 1], "d": [0, 1, 0], "e": [1, 0, 1]}
    np.testing.assert_array_equal(_stored(tmp_path / "ds"), [rows[k] for k in "abcde" for _ in range(2)])


@pytest.mark.parametrize(("extra", "message"), [
    (["select.label_file=SIDE", "pack.labels=sidecar"], "pack.labels=sidecar reads a folder's labels.csv, "
     "but pack reads the previous stage's outputs: give the sidecar to select"),
    (["select.label_file=GONE", "pack.labels=tags"],
     "select.label_file: .*gone.csv names 1 file not in .*faces: not_there.jpg"),
])
def test_sidecar_in_a_chain_bad_uses_are_one_line(folder, tmp_path, extra, message):
    (folder / "gone.csv").write_text("file,tags\na.jpg,x\nnot_there.jpg,y\n")
    extra = [e.replace("SIDE", str(folder / "labels.csv")).replace("GONE", str(folder / "gone.csv"))
             for e in extra]
    with pytest.raises(StageError, match=message) as caught:
        run_prepare(_chain(folder, tmp_path, *extra))
    assert "\n" not in str(caught.value) and not (tmp_path / "w").exists() and not (tmp_path / "ds").exists()


def test_images_a_weight_leaves_out_stay_weight_not_labels(folder, tmp_path):
    assert pack.main([f"{folder}:0.5", str(tmp_path / "ds"), "--labels", "sidecar", "--min-count", "1",
                      "--no-progress", "--no-contact-sheet"]) == 0
    reasons = [e["reason"] for e in Manifest.read(tmp_path / "ds" / "manifest.jsonl")]
    assert sorted(set(reasons)) == ["packed", "weight"]
    assert load_info(tmp_path / "ds").count == reasons.count("packed")
