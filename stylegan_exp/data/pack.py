"""Stage 7, pack: prepare's end, on the dataset writer (data/writer.py) with its rules.

Unlike the dataset tool (which refuses a folder with any bad file), a file that cannot be decoded, or
whose size differs from most others', is skipped with its reason in the manifest. Several source
folders are combined with weights (anime + real faces): the integer part of a weight is how many
times each image is used, the fraction the share used once more, drawn by a stable hash of the name.
The dataset and its manifest are written atomically, so a killed pack leaves nothing and its rerun
redoes it; a finished one is not redone.
CLI: ``python -m stylegan_exp.data.pack SRC[:WEIGHT][,SRC[:WEIGHT]…] DST [--image-format jpeg] …``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

from stylegan_exp.aspect import AspectError, parse_aspect
from stylegan_exp.data.manifest import (
    MANIFEST,
    Manifest,
    StageError,
    StageResult,
    contact_sheet,
    resolve_inputs,
    stable_hash,
    stage_cli,
    summarize,
)
from stylegan_exp.data.prepare_config import PackConfig, PackSource, RunOptions
from stylegan_exp.data.settings import (
    SETTINGS_FILE,
    combine,
    input_settings,
    read_record,
    record_bytes,
    retire,
)


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


def pack_settings(cfg: PackConfig, sources: list[PackSource]) -> dict:
    """What makes the dataset: the encoding, the weights and each source's settings (its stage record or
    its path; under `sources[i].` when there are several)."""
    own = {"pack.image_format": cfg.image_format, "pack.jpeg_quality": cfg.jpeg_quality,
           "pack.shard_size": cfg.shard_size, "pack.weights": [s.weight for s in sources]}
    if cfg.aspect != "1:1":  # squares' settings as before
        own["pack.aspect"] = cfg.aspect
    if len(sources) == 1:
        return combine(own, input_settings(sources[0].path))
    return combine(own, {f"sources[{i}].{k}": v
                         for i, s in enumerate(sources) for k, v in input_settings(s.path).items()})


def run(
    src: str | os.PathLike | None, dst: str | os.PathLike, cfg: PackConfig, options: RunOptions
) -> StageResult:
    """Pack cfg.sources (or SRC, parsed as `path[:weight],…`) into the dataset folder DST."""
    from stylegan_exp.data.dataset_format import INFO_FILE, DatasetError  # TensorFlow: import late.
    from stylegan_exp.data.writer import PackItem, check_format, pack_files

    dst = Path(dst)
    try:
        fmt = check_format(cfg.image_format)
    except DatasetError as exc:
        raise StageError(f"pack {exc}") from exc
    try:
        aspect = parse_aspect(cfg.aspect, "pack.aspect")
    except AspectError as exc:
        raise StageError(str(exc)) from None
    sources = list(cfg.sources) or parse_sources(str(src))
    if not sources:
        raise StageError("pack needs at least one source folder")
    for source in sources:
        if source.weight < 0:
            raise StageError(f"pack source {source.path} has a negative weight {source.weight}")
    manifest_file = dst / f"{MANIFEST}.jsonl"
    settings = pack_settings(cfg, sources)
    if (dst / INFO_FILE).is_file() and manifest_file.is_file():
        record = read_record(dst)
        if record is not None and record["settings"] == settings:
            return summarize("pack", dst, Manifest.read(manifest_file), 0, 0.0, manifest_file)
        retire(dst, settings, "pack")
    items, weights = [], []
    for source in sources:
        for key, path in resolve_inputs(source.path):
            items.append(PackItem(path, str(path), copies(key, source.weight)))
            weights.append(source.weight)
    entries: list[dict] = []

    def manifest(problems: list) -> dict[str, bytes]:
        for item, weight, problem in zip(items, weights, problems, strict=True):
            line = {"source": os.path.abspath(item.path), "output": None, "kept": False, "weight": weight}
            if problem is not None:
                line["reason"] = problem.reason
                if problem.reason in ("unreadable", "corrupt"):
                    line["error"] = problem.text
            elif item.copies == 0:
                line["reason"] = "weight"
            else:
                line.update(kept=True, reason="packed", copies=item.copies, output=str(dst))
            entries.append(line)
        return {manifest_file.name: "".join(json.dumps(e) + "\n" for e in entries).encode(),
                SETTINGS_FILE: record_bytes("pack", settings)}

    start = time.perf_counter()
    meta = {"sources": [{"path": str(s.path), "weight": s.weight} for s in sources]}
    try:
        pack_files(
            items,
            dst,
            strict=False,
            channels=3,
            image_format=fmt,
            jpeg_quality=cfg.jpeg_quality,
            shard_size=cfg.shard_size,
            meta=meta,
            progress=options.progress,
            extra_files=manifest,
            aspect=aspect,
        )
    except DatasetError as exc:
        raise StageError(f"pack {dst}: {exc}") from exc
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
