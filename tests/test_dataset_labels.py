"""Label vectors stored with the images: dataset.json's LabelSpace, the writer's checks and counts, and
the reader's (reals, labels) batches, cached or not, split across workers or not."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stylegan_exp.data.dataset_format import INFO_FILE, DatasetError, LabelSpace
from stylegan_exp.data.reader import load_info, make_dataset
from stylegan_exp.data.writer import PackItem, pack_arrays, pack_files

SPACE = LabelSpace(["hair=red", "hair=blue", "smile"], {"hair": ["hair=red", "hair=blue"]})


def _images(n: int, res: int = 8) -> np.ndarray:
    # Image i is filled with the value 10 * i, so a batch's images say which labels must come with them.
    return np.stack([np.full((res, res, 3), 10 * i, np.uint8) for i in range(n)])


def _labels(n: int) -> np.ndarray:
    return np.array([[i % 2, 1 - i % 2, float(i % 3 == 0)] for i in range(n)], np.float32)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("labelled") / "ds"
    pack_arrays(_images(12), out, label_space=SPACE, labels=_labels(12))
    return out


def test_label_space_and_counts_are_in_dataset_json(labelled):
    document = json.loads((labelled / INFO_FILE).read_text())
    assert document["labels"] == {"names": ["hair=red", "hair=blue", "smile"],
                                  "groups": {"hair": ["hair=red", "hair=blue"]}, "counts": [6, 6, 4]}
    assert load_info(labelled).labels == LabelSpace(SPACE.names, SPACE.groups, [6, 6, 4])


def test_unlabelled_dataset_json_has_no_labels_key(tmp_path):
    pack_arrays(_images(2), tmp_path / "ds")
    assert "labels" not in json.loads((tmp_path / "ds" / INFO_FILE).read_text())
    assert load_info(tmp_path / "ds").labels is None
    with pytest.raises(DatasetError, match="has no labels: a conditional model"):
        make_dataset(tmp_path / "ds", 8, 2, labels=True)


def _pairs(ds, batches: int) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for x, c in ds.take(batches):
        index = np.rint((x.numpy()[:, 0, 0, 0] + 1) * 255 / 2 / 10).astype(int)
        out.append((index, c.numpy()))
    return out


@pytest.mark.parametrize("cache", [True, False])
def test_reader_batches_carry_each_image_own_labels(labelled, cache):
    ds = make_dataset(labelled, 4, 4, mirror=True, seed=3, shuffle_buffer=12, cache=cache, labels=True)
    seen = set()
    for index, c in _pairs(ds, 6):
        np.testing.assert_array_equal(c, _labels(12)[index])
        seen.update(index.tolist())
    assert seen == set(range(12))  # shuffled over the whole dataset, labels following


@pytest.mark.parametrize("cache", [True, False])
def test_worker_rows_keep_their_labels(labelled, cache):
    whole = _pairs(make_dataset(labelled, 8, 4, seed=1, cache=cache, labels=True), 3)
    part = _pairs(make_dataset(labelled, 8, 4, seed=1, cache=cache, labels=True, keep=[1, 3]), 3)
    for (index, c), (part_index, part_c) in zip(whole, part, strict=True):
        np.testing.assert_array_equal(part_index, index[[1, 3]])
        np.testing.assert_array_equal(part_c, c[[1, 3]])


def test_labelled_reals_are_the_unlabelled_reader_reals(labelled):
    plain = make_dataset(labelled, 4, 4, mirror=True, seed=5)
    paired = make_dataset(labelled, 4, 4, mirror=True, seed=5, labels=True)
    for x, (x2, _) in zip(plain.take(3), paired.take(3), strict=True):
        np.testing.assert_array_equal(x.numpy(), x2.numpy())


@pytest.mark.parametrize(("vector", "message"), [
    (None, "image 1 has no label vector"),
    ([1, 0], "image 0 has 2 label values \\(the vocabulary has 3\\)"),
    ([1, 1, 0], "image 0 has 2 values of group 'hair' \\(needs exactly one\\)"),
    ([0, 0, 1], "image 0 has 0 values of group 'hair'"),
    ([1, 0, 2], "image 0 has label values outside \\[0, 1\\]"),
])
def test_bad_label_vectors_are_refused_naming_the_image(tmp_path, vector, message):
    labels = [[1, 0, 0]] if vector is None else [vector, [1, 0, 0]]
    with pytest.raises(DatasetError, match=message):
        pack_arrays(_images(2), tmp_path / "ds", label_space=SPACE, labels=labels)
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize(("space", "message"), [
    (LabelSpace([]), "the label vocabulary is empty"),
    (LabelSpace(["a", "a"]), "label name 'a' is in the vocabulary twice"),
    (LabelSpace(["a", "b"], {"g": ["a", "c"]}), "label group 'g' names 'c', not in the vocabulary"),
    (LabelSpace(["a", "b"], {"g": ["a"]}), "label group 'g' has 1 value"),
])
def test_bad_vocabularies_are_one_line(tmp_path, space, message):
    with pytest.raises(DatasetError, match=message):
        pack_arrays(_images(1), tmp_path / "ds", label_space=space, labels=[[1]])


def test_pack_files_names_every_file_without_valid_labels(tmp_path):
    from PIL import Image

    items = []
    for i, labels in enumerate([(1.0, 0.0, 0.0), None, (0.0, 1.0)]):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(_images(3)[i]).save(path)
        items.append(PackItem(path, path.name, labels=labels))
    refusal = "2 images cannot be packed: img1.png has no labels; img2.png has 2"
    with pytest.raises(DatasetError, match=refusal):
        pack_files(items, tmp_path / "strict", labels=SPACE, progress=False)
    info, problems = pack_files(items, tmp_path / "lenient", labels=SPACE, strict=False, progress=False)
    assert [p and p.reason for p in problems] == [None, "labels", "labels"]
    assert info.count == 1 and info.labels.counts == [1, 0, 0]


def test_unknown_tag_lookup_lists_the_vocabulary():
    assert SPACE.index("smile") == 2
    with pytest.raises(DatasetError, match="unknown tag .glasses.; this dataset.s tags are: hair=red, hair"):
        SPACE.index("glasses")


def test_tampered_labels_in_dataset_json_are_one_line(labelled, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    document = json.loads((labelled / INFO_FILE).read_text())
    document["labels"]["groups"] = {"hair": ["hair=red", "hair=green"]}
    (copy / INFO_FILE).write_text(json.dumps(document))
    with pytest.raises(DatasetError, match="has invalid labels: label group 'hair' names 'hair=green'"):
        load_info(copy)
