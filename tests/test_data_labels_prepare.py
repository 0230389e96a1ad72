"""Tags travel through prepare: select keeps each Danbooru post's tags, crop/clean/dedupe/resize/augment
carry them to every output (both faces of a two-face post, an augmented copy), and pack stores the vector
each image's post asks for — or skips the image with its reason. Real images, real stages, real records."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY, compose_config, run_script

from stylegan_exp.data.manifest import Manifest, StageError
from stylegan_exp.data.prepare import run_prepare
from stylegan_exp.data.reader import load_info, make_dataset
from stylegan_exp.data.select import post_path

HAIR = ["blonde_hair", "red_hair", "black_hair"]
# Post id → (TADNE portrait, rating, tags). r0c0 has no face the cascade finds; r0c5 has two.
POSTS = {
    101: ("r0c0", "s", ["1girl", "blonde_hair"]),
    102: ("r0c1", "s", ["1girl", "solo", "blonde_hair", "smile"]),
    103: ("r0c2", "s", ["1girl", "solo", "red_hair", "smile"]),
    104: ("r0c3", "s", ["1girl", "solo", "black_hair"]),
    105: ("r0c4", "s", ["1girl", "solo", "blonde_hair", "red_hair"]),  # two hair colours
    106: ("r0c5", "s", ["1girl", "solo", "black_hair", "smile", "glasses"]),
    107: ("r1c0", "s", ["1girl", "smile"]),  # no hair colour
    108: ("r1c1", "e", ["1girl", "red_hair"]),  # rating: not selected
}
# What pack must store for each post's images: hair (one of three), then smile.
EXPECTED = {102: [1, 0, 0, 1], 103: [0, 1, 0, 1], 104: [0, 0, 1, 0], 106: [0, 0, 1, 1]}


@pytest.fixture(scope="module")
def danbooru(tmp_path_factory, shared_data) -> tuple[Path, Path]:
    """A Danbooru-style mirror (original/{id % 1000:04d}/{id}.jpg) and its metadata (JSON lines)."""
    root = tmp_path_factory.mktemp("danbooru")
    lines = []
    for post_id, (portrait, rating, tags) in POSTS.items():
        post = {"id": str(post_id), "rating": rating, "file_ext": "jpg", "score": "5",
                "image_width": "512", "image_height": "512",
                "tags": [{"id": str(i), "name": t, "category": "0"} for i, t in enumerate(tags)]}
        path = post_path(root, post, "original")
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_data / "anime_full" / "tadne_hysts" / f"tadne_{portrait}.jpg", path)
        lines.append(json.dumps(post))
    meta = root / "metadata.json"
    meta.write_text("\n".join(lines) + "\n")
    return root, meta


def _overrides(root: Path, meta: Path, work: Path, shared_data: Path, *extra: str) -> list[str]:
    return [
        f"source={root}", f"select.metadata={meta}", "select.variant=original", f"work_dir={work / 'work'}",
        f"dataset_dir={work / 'dataset'}",
        f"crop.cascade={shared_data / 'cascade' / 'lbpcascade_animeface.xml'}",
        "crop.min_face_size=64", "resize.resolution=32", "augment.copies=1",
        "stages=[select,crop,clean,dedupe,resize,augment,pack]", "run.workers=1", "run.progress=false",
        "run.contact_sheet=false", *extra,
    ]


def _post_of(name: str) -> int:
    return int(Path(name).name.split("_")[0])


def _stored(dataset: Path) -> np.ndarray:
    info = load_info(dataset)
    rows = []
    for raw in tf.data.TFRecordDataset([str(dataset / s.file) for s in info.shards]):
        rows.append(tf.train.Example.FromString(raw.numpy()).features.feature["labels"].float_list.value)
    return np.array(rows)


@pytest.fixture(scope="module")
def prepared(danbooru, shared_data, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("prepared")
    hair = f"+pack.label_groups.hair=[{','.join(HAIR)}]"  # a new key of a dict: `+` (Hydra)
    run_prepare(compose_config("prepare", *_overrides(*danbooru, work, shared_data, "pack.labels=tags", hair,
                                                       "pack.vocabulary=[smile]")))
    return work


def test_every_stage_carries_each_post_tags(prepared):
    work = prepared / "work"
    select = {e["source"]: e for e in Manifest.read(work / "select" / "manifest.jsonl")}
    assert select["102"]["tags"] == POSTS[102][2] and "tags" not in select["108"]  # not selected
    crops = [e for e in Manifest.read(work / "crop" / "manifest.jsonl") if e["kept"]]
    assert sorted(e["output"] for e in crops if e["source"] == "106") == ["106_face0.png", "106_face1.png"]
    for stage in ("crop", "clean", "dedupe", "resize", "augment"):
        kept = [e for e in Manifest.read(work / stage / "manifest.jsonl") if e["kept"]]
        assert kept and all(e["tags"] == POSTS[_post_of(e["output"])][2] for e in kept), stage
    augmented = [e["output"] for e in Manifest.read(work / "augment" / "manifest.jsonl")]
    assert "106_face1_aug0.png" in augmented


def test_pack_stores_each_image_vector_over_the_vocabulary(prepared):
    dataset = prepared / "dataset"
    info = load_info(dataset)
    assert info.labels.names == [*HAIR, "smile"] and info.labels.groups == {"hair": HAIR}
    entries = Manifest.read(dataset / "manifest.jsonl")
    packed = [e for e in entries if e["kept"]]
    posts = [_post_of(e["source"]) for e in packed]
    # 102, 103, 104 and both faces of 106, each as the resized face and its augmented copy.
    assert sorted(posts) == [102, 102, 103, 103, 104, 104, 106, 106, 106, 106]
    expected = np.array([EXPECTED[p] for p in posts], np.float32)
    np.testing.assert_array_equal(_stored(dataset), expected)  # records in manifest order
    assert info.labels.counts == expected.sum(axis=0).astype(int).tolist() == [2, 2, 6, 8]
    assert packed[0]["labels"] == [n for n, v in zip(info.labels.names, expected[0], strict=True) if v]
    skipped = {_post_of(e["source"]): e["error"] for e in entries if e["reason"] == "labels"}
    assert skipped == {105: "has 2 tags of group 'hair' (blonde_hair, red_hair; it takes one)",
                       107: "has none of group 'hair' (blonde_hair, red_hair, black_hair)"}
    assert info.meta["labels"] == "tags"


def test_reader_pairs_the_faces_with_their_labels(prepared):
    batch, labels = next(iter(make_dataset(prepared / "dataset", 32, 10, labels=True, shuffle_buffer=1)))
    assert batch.shape == (10, 32, 32, 3) and labels.shape == (10, 4)


def test_top_k_vocabulary_and_a_rerun_with_other_labels(prepared, danbooru, shared_data):
    work = prepared
    cfg = compose_config("prepare", *_overrides(*danbooru, work, shared_data, "pack.labels=tags",
                                                "pack.top_k=3", "pack.min_count=2",
                                                "pack.exclude_tags=[1girl]"))
    results = run_prepare(cfg)
    assert [r.processed for r in results[:-1]] == [0] * 6  # the label settings are pack's alone
    info = load_info(work / "dataset")
    # Faces (each twice: resized and augmented) per tag: solo 6, smile 5, black_hair 3, blonde/red_hair 2.
    assert info.labels.names == ["solo", "smile", "black_hair"] and info.labels.groups == {}
    assert info.count == 14  # no group: every face has a vector, zeros where it lacks a tag
    assert sorted(p.name for p in work.iterdir() if p.name.startswith("dataset.old-"))  # the old one kept


@pytest.mark.parametrize(("extra", "message"), [
    (["pack.labels=tagz"], "pack.labels must be one of none, tags, sidecar, folders, got 'tagz'"),
    (["pack.labels=tags", "pack.vocabulary=[smile,glases]"], "unknown tag glases: no image has it"),
    (["pack.labels=tags", "pack.min_count=100"], "no tag is on at least 100 images"),
])
def test_bad_labels_are_one_line(prepared, danbooru, shared_data, tmp_path, extra, message):
    overrides = _overrides(*danbooru, prepared, shared_data, *extra)
    overrides[overrides.index(f"dataset_dir={prepared / 'dataset'}")] = f"dataset_dir={tmp_path / 'ds'}"
    with pytest.raises(StageError, match=message) as caught:
        run_prepare(compose_config("prepare", *overrides))
    assert "\n" not in str(caught.value) and not (tmp_path / "ds").exists()


def test_tags_need_metadata(shared_data, tmp_path):
    cfg = compose_config("prepare", f"source={shared_data / 'anime_faces_256'}", f"work_dir={tmp_path / 'w'}",
                         f"dataset_dir={tmp_path / 'ds'}", "stages=[select,pack]", "pack.labels=tags",
                         "run.progress=false", "run.contact_sheet=false")
    with pytest.raises(StageError, match="pack.labels=tags: no image of .* carries tags \\(select "
                                         "keeps them from Danbooru metadata; a folder of images needs"):
        run_prepare(cfg)


def test_tag_string_posts_and_a_post_without_tags(shared_data, tmp_path):
    root = tmp_path / "danbooru"
    posts = [{"id": "201", "rating": "s", "tag_string": "1girl smile blonde_hair"},
             {"id": "202", "rating": "s"},  # no tags at all: unknown, not "none of them"
             {"id": "203", "rating": "s", "tags": []}]
    for post, portrait in zip(posts, ["r2c0", "r2c1", "r2c2"], strict=True):
        path = post_path(root, post, "original")
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_data / "anime_full" / "tadne_hysts" / f"tadne_{portrait}.jpg", path)
    (root / "meta.json").write_text("".join(json.dumps(p) + "\n" for p in posts))
    cfg = compose_config("prepare", f"source={root}", f"select.metadata={root / 'meta.json'}",
                         "select.variant=original", f"work_dir={tmp_path / 'w'}",
                         f"dataset_dir={tmp_path / 'ds'}", "stages=[select,pack]", "pack.labels=tags",
                         "pack.vocabulary=[smile]", "run.progress=false", "run.contact_sheet=false")
    run_prepare(cfg)
    entries = {Path(e["source"]).stem: e for e in Manifest.read(tmp_path / "ds" / "manifest.jsonl")}
    assert entries["202"]["error"] == "has no tags (select kept none for its source)"
    assert entries["201"]["labels"] == ["smile"] and entries["203"]["labels"] == []
    np.testing.assert_array_equal(_stored(tmp_path / "ds"), [[1], [0]])


def test_danbooru_tags_preset_and_bad_numbers_fail_before_any_stage(tmp_path):
    cfg = compose_config("prepare", "prepare/pack=danbooru_tags")
    assert cfg.pack.labels == "tags" and len(cfg.pack.label_groups.hair_color) == 13
    assert cfg.pack.image_format == "jpeg"
    with pytest.raises(StageError, match="pack.min_count >= 1, got 64 and 0"):
        run_prepare(compose_config("prepare", f"source={tmp_path}", f"work_dir={tmp_path / 'w'}",
                                   "pack.labels=tags", "pack.min_count=0"))
    assert not (tmp_path / "w").exists()


@pytest.mark.slow
def test_danbooru_tags_train_a_conditional_model_that_samples_by_tag(prepared, tmp_path):
    """The whole path a user takes: Danbooru metadata with tags → prepare → a conditional run → tags=[…]."""
    outputs = tmp_path / "outputs"
    run_script("train.py", *TINY, "dataset=folder", f"dataset.path={prepared / 'dataset'}", "logger=none",
               "model.conditional=true", "schedule.total_kimg=0.1", f"outputs_root={outputs}", cwd=tmp_path)
    (run,) = (outputs / "tiny").iterdir()
    assert json.loads((run / "labels.json").read_text())["names"] == [*HAIR, "smile"]
    proc = run_script("sample.py", "name=tiny", f"outputs_root={outputs}", "tags=[red_hair,smile]",
                      "seeds=[0,1]", cwd=tmp_path)
    assert "tags red_hair, smile" in proc.stdout
    (samples,) = outputs.glob("tiny/samples-random-*")
    assert len(list(samples.glob("*.png"))) == 2
