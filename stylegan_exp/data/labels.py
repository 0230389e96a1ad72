"""Tags → label vectors: the vocabulary a labelled dataset stores and each image's vector over it.

An image's tags come from Danbooru metadata (kept by select, carried by every later stage), from a
sidecar beside a plain folder (``labels.csv``/``labels.json``: file → tags or class) or from sub-folder
names (one class per folder). The vocabulary is a user list or the `top_k` most common tags on at least
`min_count` images, plus categorical groups ("one hair colour of blonde_hair, red_hair, …") whose members
are mutually exclusive: an image with none or several of a group's tags gets no vector but a reason, as
does an image without tags — never a silent row of zeros. Pure Python: the writer (data/writer.py)
checks and stores the vectors.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stylegan_exp.data.dataset_format import DatasetError, LabelSpace

SIDECARS = ("labels.csv", "labels.json")
CLASS_GROUP = "class"
SOURCES = ("none", "tags", "sidecar", "folders")
_SHOWN = 5


@dataclass(frozen=True)
class Vocabulary:
    """How to choose the stored tags: `tags` (a user list; empty = the `top_k` most common tags on at
    least `min_count` images, less `exclude`) plus the categorical `groups` (name → member tags)."""

    tags: Sequence[str] = ()
    top_k: int = 64
    min_count: int = 10
    exclude: Collection[str] = ()
    groups: Mapping[str, Sequence[str]] = field(default_factory=dict)


@dataclass
class Labelled:
    """Each image's vector over `space`, or (vector None) the reason it has none."""

    space: LabelSpace
    vectors: list[tuple[float, ...] | None]
    problems: list[str | None]


def parse_group(text: str) -> tuple[str, list[str]]:
    """A command line's categorical group, `NAME=TAG,TAG,…`."""
    name, sep, members = text.partition("=")
    if not sep or not name or not members:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=TAG,TAG,…")
    return name, [m for m in members.split(",") if m]


def _listed(names: Iterable[str]) -> str:
    names = list(names)
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    return ", ".join(names[:_SHOWN]) + more


def build_space(tag_sets: Sequence[Collection[str] | None], vocabulary: Vocabulary) -> LabelSpace:
    """The vocabulary over these images' tags (None = an image without tags): group members first,
    group by group, then the listed or most common tags. A listed tag or group member that no image
    carries, or an empty vocabulary, is a one-line DatasetError."""
    counts = Counter(tag for tags in tag_sets if tags is not None for tag in set(tags))
    if vocabulary.top_k < 0 or vocabulary.min_count < 1:
        raise DatasetError(f"top_k must be >= 0 and min_count >= 1, got {vocabulary.top_k} and "
                           f"{vocabulary.min_count}")
    grouped = [m for members in vocabulary.groups.values() for m in members]
    listed = list(vocabulary.tags)
    unknown = [t for t in dict.fromkeys(grouped + listed) if counts[t] == 0]
    if unknown:
        raise DatasetError(f"unknown tag{'s' if len(unknown) > 1 else ''} {_listed(unknown)}: no image has "
                           f"{'them' if len(unknown) > 1 else 'it'} (most common tags: "
                           f"{_listed(t for t, _ in counts.most_common(_SHOWN)) or 'none'})")
    if not listed:
        skip = set(grouped) | set(vocabulary.exclude)
        ranked = sorted((t for t, n in counts.items() if n >= vocabulary.min_count and t not in skip),
                        key=lambda t: (-counts[t], t))
        listed = ranked[: vocabulary.top_k]
    names = grouped + [t for t in listed if t not in set(grouped)]
    if not names:
        if not counts:
            raise DatasetError("the label vocabulary is empty: no image has tags")
        top, n = counts.most_common(1)[0]
        raise DatasetError(f"the label vocabulary is empty: no tag is on at least {vocabulary.min_count} "
                           f"images (the most common, {top!r}, is on {n}); lower min_count or list the tags")
    space = LabelSpace(names, {g: list(m) for g, m in vocabulary.groups.items()})
    space.check()
    return space


def label_vector(
    tags: Collection[str] | None, space: LabelSpace
) -> tuple[tuple[float, ...] | None, str | None]:
    """One image's vector over `space`, or None and why: no tags, or not exactly one tag of a group."""
    if tags is None:
        return None, "has no tags"
    tags = set(tags)
    for group, members in space.groups.items():
        hits = [m for m in members if m in tags]
        if not hits:
            return None, f"has none of group {group!r} ({_listed(members)})"
        if len(hits) > 1:
            return None, f"has {len(hits)} tags of group {group!r} ({', '.join(hits)}; it takes one)"
    return tuple(float(name in tags) for name in space.names), None


def label_images(tag_sets: Sequence[Collection[str] | None], vocabulary: Vocabulary) -> Labelled:
    """The vocabulary over these images and each one's vector or reason."""
    space = build_space(tag_sets, vocabulary)
    pairs = [label_vector(tags, space) for tags in tag_sets]
    return Labelled(space, [v for v, _ in pairs], [p for _, p in pairs])


# ----------------------------------------------------------------------------------------------
# Plain folders: a sidecar file or sub-folder names


@dataclass
class FolderTags:
    """Tags by file (its path relative to the folder), the categorical groups they imply (a class
    sidecar or sub-folders: `class` over every value) and where they came from, for messages."""

    tags: dict[str, list[str]]
    groups: dict[str, list[str]]
    origin: str


def find_sidecar(folder: Path, label_file: str | None = None) -> Path:
    """`label_file`, else the folder's labels.csv or labels.json (exactly one of them)."""
    if label_file:
        path = Path(label_file)
        if not path.is_file():
            raise DatasetError(f"label file {path} does not exist")
        return path
    found = [folder / name for name in SIDECARS if (folder / name).is_file()]
    if len(found) != 1:
        what = "neither" if not found else "both"
        raise DatasetError(f"{folder} has {what} of {' and '.join(SIDECARS)}; give the label file's path")
    return found[0]


def _class_tags(classes: dict[str, str], origin: str) -> FolderTags:
    values = sorted(set(classes.values()), key=lambda v: (0, int(v), "") if v.isdigit() else (1, 0, v))
    return FolderTags({k: [v] for k, v in classes.items()}, {CLASS_GROUP: values}, origin)


def read_sidecar(path: Path) -> FolderTags:
    """labels.csv (a header `file,tags` with space-separated tags, or `file,class`) or labels.json
    (file → list of tags, or file → class; or stylegan2-ada's dataset.json, {"labels": [[file, class],
    …]}); any other shape is one line naming the file and entry."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path} is not JSON ({exc})") from exc
        if not isinstance(document, dict) or not document:
            raise DatasetError(f"{path} must map each file to its tags (a list) or its class (a string)")
        pairs = document.get("labels") if list(document) == ["labels"] else None
        if isinstance(pairs, list) and pairs and all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) and isinstance(p[1], int | str)
            for p in pairs
        ):
            return _class_tags({p[0]: str(p[1]) for p in pairs}, str(path))
        kinds = {type(v) for v in document.values()}
        if kinds == {list} and all(isinstance(t, str) for v in document.values() for t in v):
            return FolderTags({str(k): list(v) for k, v in document.items()}, {}, str(path))
        if kinds <= {str, int}:
            return _class_tags({str(k): str(v) for k, v in document.items()}, str(path))
        raise DatasetError(f"{path} mixes tag lists and classes or holds other values; give every file "
                           "a list of tags or every file a class")
    rows = list(csv.reader(io.StringIO(text)))
    header = [h.strip() for h in rows[0]] if rows else []
    if header not in (["file", "tags"], ["file", "class"]):
        raise DatasetError(f"{path} must start with the header 'file,tags' or 'file,class', got "
                           f"{','.join(header)!r}")
    found: dict[str, str] = {}
    for number, row in enumerate(rows[1:], 2):
        if not row:
            continue
        if len(row) != 2 or not row[0].strip():
            raise DatasetError(f"{path}:{number} is not 'file,{header[1]}' ({','.join(row)!r})")
        name = row[0].strip()
        if name in found:
            raise DatasetError(f"{path}:{number} names {name} a second time")
        found[name] = row[1].strip()
    if not found:
        raise DatasetError(f"{path} has no entries")
    if header[1] == "class":
        empty = [k for k, v in found.items() if not v]
        if empty:
            raise DatasetError(f"{path} gives no class for {_listed(empty)}")
        return _class_tags(found, str(path))
    return FolderTags({k: v.split() for k, v in found.items()}, {}, str(path))


def folder_classes(keys: Iterable[str], folder: Path) -> FolderTags:
    """Each file's class is its first sub-folder's name; files directly in `folder` have none."""
    classes = {key: key.split("/", 1)[0] for key in keys if "/" in key}
    if not classes:
        raise DatasetError(f"{folder} has no sub-folders to take classes from")
    return _class_tags(classes, f"the sub-folders of {folder}")


def check_files(found: FolderTags, keys: Collection[str], folder: Path) -> None:
    """A sidecar naming a file that is not among the folder's images is one line naming it."""
    missing = [k for k in found.tags if k not in keys]
    if missing:
        raise DatasetError(f"{found.origin} names {len(missing)} file{'s' if len(missing) > 1 else ''} "
                           f"not in {folder}: {_listed(missing)}")


def missing_text(found: FolderTags) -> str:
    """Why a file of the folder has no tags, for its message."""
    if found.origin.startswith("the sub-folders"):
        return "is not in a sub-folder (its class)"
    return f"has no entry in {Path(found.origin).name}"


def folder_tags(
    folder: Path, keys: Collection[str], source: str, label_file: str | None = None
) -> FolderTags:
    """A plain folder's tags by file from its sidecar (`source` sidecar; checked against `keys`, the
    files' paths relative to the folder) or its sub-folder names (`source` folders)."""
    if source == "folders":
        return folder_classes(keys, folder)
    found = read_sidecar(find_sidecar(folder, label_file))
    check_files(found, set(keys), folder)
    return found


def label_files(keys: Sequence[str], found: FolderTags, vocabulary: Vocabulary) -> Labelled:
    """Every file's vector, refusing (one line naming each file) when any has none: the dataset tool's
    rule. The groups of `found` (a class) join the vocabulary's."""
    groups = {**found.groups, **vocabulary.groups}
    labelled = label_images([found.tags.get(k) for k in keys], Vocabulary(
        vocabulary.tags, vocabulary.top_k, vocabulary.min_count, vocabulary.exclude, groups))
    problems = [f"{k} {missing_text(found) if p == 'has no tags' else p}"
                for k, p in zip(keys, labelled.problems, strict=True) if p]
    if problems:
        shown = "; ".join(problems[:_SHOWN]) + (f"; and {len(problems) - _SHOWN} more"
                                                  if len(problems) > _SHOWN else "")
        raise DatasetError(f"{len(problems)} image{'s' if len(problems) > 1 else ''} cannot be labelled: "
                           f"{shown}")
    return labelled
