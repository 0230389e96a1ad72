"""What a packed dataset is on disk, shared by its writer and its reader: TFRecord shards plus
``dataset.json`` (version, resolution, count, channels, stored image format, shard sizes and sha256s; and
for rectangles their ``aspect``, width:height, with ``resolution`` the short side: a square dataset's file is
as it always was).

A record holds the encoded image as prepared (JPEG/PNG bytes), its shape and a label; lower
resolutions for progressive growing are made by the reader, not stored.
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
    if document["aspect"] == "1:1":  # square datasets' files stay byte for byte what they were
        del document["aspect"]
    return (json.dumps(document, indent=2) + "\n").encode()
