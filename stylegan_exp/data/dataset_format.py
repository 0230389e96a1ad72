"""What a packed dataset is on disk, shared by its writer and its reader: TFRecord shards plus
``dataset.json`` (version, resolution, count, channels, stored image format, shard sizes and sha256s; and
for rectangles their ``aspect``, width:height, with ``resolution`` the short side: a square dataset's file is
as it always was).

A record holds the encoded image as prepared (JPEG/PNG bytes), its shape and either ``label`` = -1
(an unlabelled dataset) or ``labels``, a float vector with one entry per name of the dataset's
LabelSpace (1 = the image has that tag or class value). Lower resolutions for progressive growing are
made by the reader, not stored.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

VERSION = 1
INFO_FILE = "dataset.json"


class DatasetError(ValueError):
    """A dataset that cannot be packed or read; the message is one line naming the culprit."""


@dataclass
class ShardInfo:
    """One TFRecord file of a dataset and what it must hash to."""

    file: str
    count: int
    sha256: str
    bytes: int


@dataclass
class LabelSpace:
    """What a labelled dataset's label vectors mean: one column per name (a tag, or a value of a
    categorical group such as `hair_color=blonde`), the groups whose names are mutually exclusive, and
    how many packed images have each name (filled in by the writer)."""

    names: list[str]
    groups: dict[str, list[str]] = field(default_factory=dict)
    counts: list[int] = field(default_factory=list)

    @property
    def dim(self) -> int:
        return len(self.names)

    def check(self) -> None:
        """A vocabulary a conditional model can be trained on, or a one-line DatasetError saying why not."""
        if not self.names:
            raise DatasetError(
                "the label vocabulary is empty: no tag was kept (lower the minimum count or list the tags)"
            )
        seen: set[str] = set()
        for name in self.names:
            if not isinstance(name, str) or not name:
                raise DatasetError(f"label name {name!r} is not a non-empty string")
            if name in seen:
                raise DatasetError(f"label name {name!r} is in the vocabulary twice")
            seen.add(name)
        for group, members in self.groups.items():
            missing = [m for m in members if m not in seen]
            if missing:
                named = ", ".join(map(repr, missing))
                raise DatasetError(f"label group {group!r} names {named}, not in the vocabulary")
            if len(members) < 2:
                raise DatasetError(f"label group {group!r} has {len(members)} value; it needs at least 2")
        if self.counts and len(self.counts) != len(self.names):
            raise DatasetError(f"label counts have {len(self.counts)} entries for {len(self.names)} names")

    def index(self, name: str) -> int:
        """The column of a name; an unknown one is a DatasetError listing the vocabulary."""
        try:
            return self.names.index(name)
        except ValueError:
            raise DatasetError(
                f"unknown tag {name!r}; this dataset's tags are: {', '.join(self.names)}"
            ) from None


def label_space_from_json(document: object) -> LabelSpace | None:
    """dataset.json's `labels` (absent or null for an unlabelled dataset)."""
    if document is None:
        return None
    if not isinstance(document, dict):
        raise DatasetError(f"labels must be a mapping, got {type(document).__name__}")
    space = LabelSpace(
        [str(n) for n in document["names"]],
        {str(g): [str(m) for m in members] for g, members in (document.get("groups") or {}).items()},
        [int(c) for c in document.get("counts") or []],
    )
    space.check()
    return space


@dataclass
class DatasetInfo:
    """The contents of ``dataset.json``; ``path`` is the dataset folder."""

    path: Path
    resolution: int
    count: int
    channels: int
    image_format: str
    shards: list[ShardInfo]
    meta: dict = field(default_factory=dict)
    source_bytes: int = 0
    labels: LabelSpace | None = None
    aspect: str = "1:1"  # width:height (stylegan_exp/aspect.py); `resolution` is the short side

    @property
    def total_bytes(self) -> int:
        """Bytes of all shards (what the dataset costs on disk, without the small JSON)."""
        return sum(shard.bytes for shard in self.shards)


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def info_json(info: DatasetInfo) -> bytes:
    """The bytes of dataset.json (the folder's path is not stored: datasets can be moved)."""
    document = {"version": VERSION, **{k: v for k, v in asdict(info).items() if k != "path"}}
    if info.labels is None:
        del document["labels"]  # an unlabelled dataset's file stays as it always was
    if document["aspect"] == "1:1":  # square datasets' files stay byte for byte what they were
        del document["aspect"]
    return (json.dumps(document, indent=2) + "\n").encode()
