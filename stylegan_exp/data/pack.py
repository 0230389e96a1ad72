"""Stage 7, pack: the dataset tool, hardened for real folders, on top of records.pack_arrays.

Unlike records.pack_folder (which refuses a folder with any bad file), a file that cannot be
decoded, or whose size differs from the first good image's, is skipped with its reason in the
manifest. Several source folders are combined with weights (anime + real faces): the integer part
of a weight is how many times each image is used, the fraction the share used once more, drawn by
a stable hash of the name. The dataset is written atomically, so a killed pack leaves nothing and
its rerun redoes it; a finished one is not redone.
CLI: ``python -m stylegan_exp.data.pack SRC[:WEIGHT][,SRC[:WEIGHT]…] DST [--image-format jpeg] …``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from stylegan_exp.data.images import ImageError, decode_image
from stylegan_exp.data.manifest import (
    Manifest,
    StageError,
    StageResult,
    contact_sheet,
    resolve_inputs,
    stable_hash,
    stage_cli,
    summarize,
    write_atomic,
)
from stylegan_exp.data.prepare_config import PackConfig, PackSource, RunOptions

FORMATS = ("jpeg", "png")


def parse_sources(spec: str) -> list[PackSource]:
    """`a:2,b:0.5` → [PackSource("a", 2.0), PackSource("b", 0.5)] (a missing weight is 1)."""
    sources = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        path, _, weight = part.rpartition(":")
        try:
            sources.append(PackSource(path, float(weight)) if path else PackSource(part, 1.0))
        except ValueError:
            sources.append(PackSource(part, 1.0))
    return sources


def copies(key: str, weight: float) -> int:
    """How many times an image is used for a weight (stable for a name, whoever packs it)."""
    whole = math.floor(weight)
    return whole + int(stable_hash(key) / 2**64 < weight - whole)


def run(
    src: str | os.PathLike | None, dst: str | os.PathLike, cfg: PackConfig, options: RunOptions
) -> StageResult:
    """Pack cfg.sources (or SRC, parsed as `path[:weight],…`) into the dataset folder DST."""
    dst = Path(dst)
    fmt = "jpeg" if cfg.image_format.lower() == "jpg" else cfg.image_format.lower()
    if fmt not in FORMATS:
        raise StageError(f"pack image_format must be jpeg or png, got {cfg.image_format!r}")
    sources = list(cfg.sources) or parse_sources(str(src))
    if not sources:
        raise StageError("pack needs at least one source folder")
    for source in sources:
        if source.weight < 0:
            raise StageError(f"pack source {source.path} has a negative weight {source.weight}")
    from stylegan_exp.data.records import INFO_FILE, DatasetError, pack_arrays  # TensorFlow: import late.

    manifest_file = dst / "manifest.jsonl"
    if (dst / INFO_FILE).is_file() and manifest_file.is_file():
        entries = Manifest.read(manifest_file)
        return summarize("pack", dst, entries, 0, 0.0, manifest_file)
    items = [(source, key, path) for source in sources for key, path in resolve_inputs(source.path)]
    entries: list[dict] = []
    shape: list[tuple[int, ...]] = []
    source_bytes = 0
    start = time.perf_counter()

    def images() -> Iterator[np.ndarray]:
        nonlocal source_bytes
        for source, key, path in tqdm(items, desc="pack", unit="img", disable=not options.progress or None):
            line = {"source": str(path.resolve()), "output": None, "kept": False, "weight": source.weight}
            n = copies(key, source.weight)
            data = path.read_bytes() if path.is_file() else b""
            try:
                pixels = decode_image(data, 3, name=str(path)) if data else None
            except ImageError as exc:
                pixels, line["error"] = None, str(exc)
            if pixels is None:
                line["reason"] = "empty" if not data else "unreadable"
            elif shape and pixels.shape != shape[0]:
                line["reason"] = f"size {pixels.shape[1]}x{pixels.shape[0]} (not {shape[0][1]}x{shape[0][0]})"
            elif pixels.shape[0] != pixels.shape[1] or pixels.shape[0] & (pixels.shape[0] - 1):
                line["reason"] = f"size {pixels.shape[1]}x{pixels.shape[0]} (not a square power of two)"
            elif n == 0:
                line["reason"] = "weight"
            else:
                shape[:] = [pixels.shape]
                line.update(kept=True, reason="packed", copies=n, output=str(dst))
                source_bytes += len(data)
                for _ in range(n):
                    yield pixels
            entries.append(line)

    meta = {"sources": [{"path": str(s.path), "weight": s.weight} for s in sources]}
    try:
        pack_arrays(
            images(),
            dst,
            image_format=fmt,
            jpeg_quality=cfg.jpeg_quality,
            shard_size=cfg.shard_size,
            meta=meta,
        )
    except DatasetError as exc:
        raise StageError(f"pack {dst}: {exc}") from exc
    # The source file bytes, not the raw pixel bytes pack_arrays counts: what the ratio is about.
    document = json.loads((dst / INFO_FILE).read_text())
    document["source_bytes"] = source_bytes
    write_atomic(dst / INFO_FILE, (json.dumps(document, indent=2) + "\n").encode())
    write_atomic(manifest_file, "".join(json.dumps(e) + "\n" for e in entries).encode())
    result = summarize("pack", dst, entries, len(items), time.perf_counter() - start, manifest_file)
    if options.contact_sheet:
        contact_sheet(
            [dict(e, output=e["source"]) for e in entries],
            dst,
            {e["source"]: Path(e["source"]) for e in entries},
            dst / "contact_sheet.png",
        )
    return result


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return stage_cli("pack", PackConfig, run, argv, __doc__.split("\n")[0])


if __name__ == "__main__":
    sys.exit(main())
