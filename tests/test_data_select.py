"""select: Danbooru-style metadata filtered by rating, tags, score and size, mapped to the
{variant}/{id % 1000:04d}/{id}.{ext} layout; a plain folder or list file is accepted too."""

import json
import shutil

import pytest

from stylegan_exp.data.manifest import Manifest, StageError, resolve_inputs
from stylegan_exp.data.prepare_config import RunOptions, SelectConfig
from stylegan_exp.data.select import post_path
from stylegan_exp.data.select import run as select

OPTS = RunOptions(progress=False, contact_sheet=False)


def _post(post_id, rating="s", tags=("solo",), score=10, size=(800, 600), ext="png"):
    return {
        "id": str(post_id),
        "rating": rating,
        "tags": [{"id": "1", "name": t} for t in tags],
        "file_ext": ext,
        "image_width": str(size[0]),
        "image_height": str(size[1]),
        "score": str(score),
    }


def test_select_by_metadata(tmp_path, shared_data):
    root = tmp_path / "danbooru"
    face = shared_data / "anime_faces_256" / "00.png"
    posts = [
        _post(1234),
        _post(5, rating="e"),
        _post(6, tags=("solo", "comic")),
        _post(7, tags=("multiple_girls",)),
        _post(8, score=-3),
        _post(9, size=(300, 200)),
        _post(10),  # No file on disk.
        _post(2001, ext="jpg"),
    ]
    for post in posts:
        if post["id"] != "10":
            path = post_path(root, post, "original")
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(face, path)
    meta = tmp_path / "meta.json"
    meta.write_text("\n".join(json.dumps(p) for p in posts) + "\n")
    cfg = SelectConfig(
        metadata=str(meta),
        variant="original",
        ratings=["s"],
        required_tags=["solo"],
        forbidden_tags=["comic"],
        min_score=0,
        min_size=512,
    )
    result = select(root, tmp_path / "out", cfg, OPTS)
    reasons = {e["source"]: e["reason"] for e in Manifest.read(result.manifest)}
    assert reasons == {
        "1234": "selected",
        "5": "rating",
        "6": "forbidden-tag",
        "7": "missing-tag",
        "8": "low-score",
        "9": "too-small",
        "10": "missing-file",
        "2001": "selected",
    }
    assert post_path(root, posts[0], "original") == root / "original" / "0234" / "1234.png"
    assert post_path(root, posts[0], "512px") == root / "512px" / "0234" / "1234.jpg"
    inputs = resolve_inputs(tmp_path / "out")  # What the next stage reads.
    assert [p for _, p in inputs] == [
        post_path(root, posts[0], "original").resolve(),
        post_path(root, posts[-1], "original").resolve(),
    ]


def test_select_folder_and_list_file(tmp_path, shared_data):
    folder = shared_data / "anime_faces_256"
    result = select(folder, tmp_path / "a", SelectConfig(), OPTS)
    assert result.kept == 10
    listing = tmp_path / "list.txt"
    listing.write_text(f"{folder / '00.png'}\n# a comment\n{folder / '01.png'}\n")
    assert select(listing, tmp_path / "b", SelectConfig(), OPTS).kept == 2
    with pytest.raises(StageError, match="nowhere"):
        select(tmp_path / "nowhere", tmp_path / "c", SelectConfig(), OPTS)
    with pytest.raises(StageError, match="meta.jsonl"):
        select(folder, tmp_path / "d", SelectConfig(metadata=str(tmp_path / "meta.jsonl")), OPTS)
