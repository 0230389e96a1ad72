"""Tags → label vectors (data/labels.py): the vocabulary (top-K with a minimum count, a user list,
categorical groups), each image's vector or the reason it has none, and plain folders' sidecars and
sub-folder classes — every bad input one line naming the culprit."""

from __future__ import annotations

import json

import pytest

from stylegan_exp.data.dataset_format import DatasetError
from stylegan_exp.data.labels import (
    Vocabulary,
    build_space,
    check_files,
    find_sidecar,
    folder_classes,
    label_images,
    label_vector,
    missing_text,
    read_sidecar,
)

HAIR = {"hair": ["blonde_hair", "red_hair", "black_hair"]}
TAGS = [
    {"1girl", "blonde_hair", "smile", "highres"},
    {"1girl", "red_hair", "smile"},
    {"1girl", "black_hair", "glasses", "highres"},
    {"1girl", "blonde_hair", "red_hair"},  # two hair colours
    {"1girl", "smile"},  # no hair colour
    None,  # no tags at all
]


def test_top_k_by_count_then_name_with_a_minimum():
    space = build_space(TAGS, Vocabulary(top_k=2, min_count=2))
    assert space.names == ["1girl", "smile"] and space.groups == {}
    space = build_space(TAGS, Vocabulary(top_k=10, min_count=2, exclude=["1girl", "highres"]))
    assert space.names == ["smile", "blonde_hair", "red_hair"]


def test_groups_come_first_and_top_k_skips_their_members():
    space = build_space(TAGS, Vocabulary(top_k=2, min_count=1, groups=HAIR))
    assert space.names == ["blonde_hair", "red_hair", "black_hair", "1girl", "smile"]
    assert space.groups == HAIR


def test_vectors_and_per_image_reasons():
    labelled = label_images(TAGS, Vocabulary(tags=["smile", "glasses"], groups=HAIR))
    assert labelled.space.names == ["blonde_hair", "red_hair", "black_hair", "smile", "glasses"]
    assert labelled.vectors[:3] == [(1, 0, 0, 1, 0), (0, 1, 0, 1, 0), (0, 0, 1, 0, 1)]
    assert labelled.vectors[3:] == [None, None, None]
    assert labelled.problems == [
        None, None, None,
        "has 2 tags of group 'hair' (blonde_hair, red_hair; it takes one)",
        "has none of group 'hair' (blonde_hair, red_hair, black_hair)",
        "has no tags",
    ]


def test_an_image_with_tags_but_none_listed_is_a_zero_row_not_an_error():
    space = build_space(TAGS, Vocabulary(tags=["glasses"]))
    assert label_vector({"1girl"}, space) == ((0.0,), None)
    assert label_vector(None, space) == (None, "has no tags")


@pytest.mark.parametrize(("vocabulary", "message"), [
    (Vocabulary(tags=["smile", "glases", "blond"]), "unknown tags glases, blond: no image has them"),
    (Vocabulary(groups={"hair": ["blonde_hair", "aqua_hair"]}), "unknown tag aqua_hair: no image has it"),
    (Vocabulary(min_count=6), "no tag is on at least 6 images \\(the most common, '1girl', is on 5\\)"),
    (Vocabulary(top_k=0), "the label vocabulary is empty"),
    (Vocabulary(min_count=0), "min_count >= 1"),
])
def test_bad_vocabularies_are_one_line(vocabulary, message):
    with pytest.raises(DatasetError, match=message) as caught:
        build_space(TAGS[:5] + [{"other"}], vocabulary)
    assert "\n" not in str(caught.value)


def test_no_tags_at_all_is_one_line():
    with pytest.raises(DatasetError, match="empty: no image has tags"):
        build_space([None, None], Vocabulary(min_count=1))


def test_csv_sidecar_with_tags_and_with_classes(tmp_path):
    tags = tmp_path / "labels.csv"
    tags.write_text('file,tags\na.png,smile blonde_hair\n"sub/b c.png",red_hair\n\n')
    found = read_sidecar(tags)
    assert found.tags == {"a.png": ["smile", "blonde_hair"], "sub/b c.png": ["red_hair"]}
    assert found.groups == {}
    classes = tmp_path / "classes.csv"
    classes.write_text("file,class\na.png,cat\nb.png,dog\nc.png,cat\n")
    found = read_sidecar(classes)
    assert found.tags == {"a.png": ["cat"], "b.png": ["dog"], "c.png": ["cat"]}
    assert found.groups == {"class": ["cat", "dog"]}
    tag_sets = [found.tags[k] for k in ("a.png", "b.png", "c.png")]
    assert label_images(tag_sets, Vocabulary(groups=found.groups)).vectors == [(1, 0), (0, 1), (1, 0)]


def test_json_sidecar_with_tags_and_with_classes(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"a.png": ["smile"], "b.png": []}))
    assert read_sidecar(path).tags == {"a.png": ["smile"], "b.png": []}
    path.write_text(json.dumps({"a.png": 0, "b.png": 10, "c.png": 3}))
    assert read_sidecar(path).groups == {"class": ["0", "3", "10"]}  # numbers in numeric order
    ada = tmp_path / "dataset.json"  # stylegan2-ada's dataset tool's labels
    ada.write_text(json.dumps({"labels": [["00000/img00000000.png", 6], ["00000/img00000001.png", 1]]}))
    found = read_sidecar(ada)
    assert found.tags == {"00000/img00000000.png": ["6"], "00000/img00000001.png": ["1"]}
    assert found.groups == {"class": ["1", "6"]}


@pytest.mark.parametrize(("name", "text", "message"), [
    ("labels.csv", "name,tags\na.png,x\n", "must start with the header 'file,tags' or 'file,class'"),
    ("labels.csv", "file,tags\na.png,x,y\n", "labels.csv:2 is not 'file,tags'"),
    ("labels.csv", "file,tags\na.png,x\na.png,y\n", "labels.csv:3 names a.png a second time"),
    ("labels.csv", "file,class\na.png,\n", "gives no class for a.png"),
    ("labels.csv", "file,tags\n", "has no entries"),
    ("labels.json", "{not json", "is not JSON"),
    ("labels.json", '{"a.png": ["x"], "b.png": "cat"}', "mixes tag lists and classes"),
])
def test_bad_sidecars_are_one_line_naming_the_file(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DatasetError, match=message):
        read_sidecar(path)


def test_sidecar_naming_a_missing_file_and_a_file_without_entry(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("file,tags\na.png,smile\ngone.png,smile\n")
    found = read_sidecar(path)
    with pytest.raises(DatasetError, match=f"{path} names 1 file not in {tmp_path}: gone.png"):
        check_files(found, {"a.png", "b.png"}, tmp_path)
    assert missing_text(found) == "has no entry in labels.csv"


def test_finding_the_sidecar(tmp_path):
    with pytest.raises(DatasetError, match="has neither of labels.csv and labels.json"):
        find_sidecar(tmp_path)
    (tmp_path / "labels.csv").write_text("file,tags\n")
    assert find_sidecar(tmp_path) == tmp_path / "labels.csv"
    (tmp_path / "labels.json").write_text("{}")
    with pytest.raises(DatasetError, match="has both of"):
        find_sidecar(tmp_path)
    with pytest.raises(DatasetError, match="label file .*nope.csv does not exist"):
        find_sidecar(tmp_path, str(tmp_path / "nope.csv"))


def test_sub_folder_classes(tmp_path):
    found = folder_classes(["cats/a.png", "dogs/x/b.png", "loose.png"], tmp_path)
    assert found.tags == {"cats/a.png": ["cats"], "dogs/x/b.png": ["dogs"]}
    assert found.groups == {"class": ["cats", "dogs"]}
    assert missing_text(found) == "is not in a sub-folder (its class)"
    with pytest.raises(DatasetError, match="has no sub-folders"):
        folder_classes(["a.png"], tmp_path)
