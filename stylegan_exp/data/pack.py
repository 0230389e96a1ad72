"""Stage 7, pack: prepare's end, on the dataset writer (data/writer.py) with its rules.

Unlike the dataset tool (which refuses a folder with any bad file), a file that cannot be decoded, or
whose size differs from most others', is skipped with its reason in the manifest. Several source
folders are combined with weights (anime + real faces): the integer part of a weight is how many
times each image is used, the fraction the share used once more, drawn by a stable hash of the name.
The dataset and its manifest are written atomically, so a killed pack leaves nothing and its rerun
redoes it; a finished one is not redone.
With `labels` (PackConfig) every image gets a label vector over a vocabulary (data/labels.py) of the
tags select kept, a sidecar's or the sub-folders'; an image without one is skipped with reason `labels`
and why in its manifest line, a bad vocabulary or sidecar is one line before anything is written.
CLI: ``python -m stylegan_exp.data.pack SRC[:WEIGHT][,SRC[:WEIGHT]…] DST [--image-format jpeg]
[--labels tags --top-k 64 --label-groups hair=blonde_hair,red_hair …]``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path

from stylegan_exp.aspect import AspectError, parse_aspect
from stylegan_exp.data.dataset_format import INFO_FILE, DatasetError, LabelSpace, file_sha256
from stylegan_exp.data.labels import (
    SOURCES,
    Vocabulary,
    find_sidecar,
    folder_tags,
    label_images,
    missing_text,
)
from stylegan_exp.data.manifest import (
    MANIFEST,
    Manifest,
    StageError,
    StageResult,
    contact_sheet,
    input_tags,
    printable,
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


def check_labels(cfg: PackConfig) -> None:
    """The label options, checked before any stage runs."""
    if cfg.labels not in SOURCES:
        raise StageError(f"pack.labels must be one of {', '.join(SOURCES)}, got {cfg.labels!r}")
    if cfg.top_k < 0 or cfg.min_count < 1:
        raise StageError(f"pack.top_k must be >= 0 and pack.min_count >= 1, got {cfg.top_k} and "
                         f"{cfg.min_count}")


def _label_settings(cfg: PackConfig, sources: list[PackSource]) -> dict:
    """The label keys of the settings (none for an unlabelled pack, whose settings stay as they were),
    with each sidecar's sha256: a changed sidecar changes the labels."""
    if cfg.labels == "none":
        return {}
    keys = ("labels", "vocabulary", "top_k", "min_count", "exclude_tags", "label_groups")
    own = {f"pack.{k}": getattr(cfg, k) for k in keys}
    if cfg.labels == "sidecar":
        try:
            files = [find_sidecar(Path(s.path), cfg.label_file) for s in sources]
            own["pack.label_files"] = [file_sha256(file) for file in files]
        except DatasetError as exc:
            raise StageError(f"pack.labels=sidecar: {exc}") from exc
    return own


def _source_tags(
    cfg: PackConfig, source: PackSource, keys: list[str]
) -> tuple[dict[str, list[str]], dict[str, list[str]], str]:
    """A source's tags by key, the groups they imply and why an image without tags has none."""
    folder = Path(source.path)
    if cfg.labels == "tags":
        tags = input_tags(folder)
        if not tags:
            raise StageError(
                f"pack.labels=tags: no image of {printable(folder)} carries tags (select keeps them from "
                "Danbooru metadata; a folder of images needs pack.labels=sidecar or folders, and stage "
                "folders made before tags were carried have none: rerun prepare with another name)")
        return tags, {}, "has no tags (select kept none for its source)"
    try:
        found = folder_tags(folder, keys, cfg.labels, cfg.label_file)
    except DatasetError as exc:
        raise StageError(f"pack.labels={cfg.labels}: {exc}") from exc
    return found.tags, found.groups, missing_text(found)


def _merge_groups(groups: list[dict[str, list[str]]]) -> dict[str, list[str]]:
    merged: dict[str, list[str]] = {}
    for found in groups:
        for name, members in found.items():
            merged[name] = list(dict.fromkeys([*merged.get(name, []), *members]))
    return merged


def pack_settings(cfg: PackConfig, sources: list[PackSource]) -> dict:
    """What makes the dataset: the encoding, the weights, the labels and each source's settings (its
    stage record or its path; under `sources[i].` when there are several)."""
    own = {"pack.image_format": cfg.image_format, "pack.jpeg_quality": cfg.jpeg_quality,
           "pack.shard_size": cfg.shard_size, "pack.weights": [s.weight for s in sources],
           **_label_settings(cfg, sources)}
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
    from stylegan_exp.data.writer import PackItem, check_format, pack_files  # TensorFlow: import late.

    dst = Path(dst)
    try:
        fmt = check_format(cfg.image_format)
    except DatasetError as exc:
        raise StageError(f"pack {exc}") from exc
    check_labels(cfg)
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
    items, weights, tag_sets, missing, groups = [], [], [], [], []
    for source in sources:
        inputs = resolve_inputs(source.path)
        tags, implied, why = (_source_tags(cfg, source, [k for k, _ in inputs]) if cfg.labels != "none"
                              else ({}, {}, ""))
        groups.append(implied)
        for key, path in inputs:
            items.append(PackItem(path, str(path), copies(key, source.weight)))
            weights.append(source.weight)
            tag_sets.append(tags.get(key))
            missing.append(why)
    space, label_problems = None, [None] * len(items)
    if cfg.labels != "none":
        space, items, label_problems = _label(cfg, items, tag_sets, missing, _merge_groups(groups))
    entries: list[dict] = []

    def manifest(problems: list) -> dict[str, bytes]:
        for index, (item, weight, problem) in enumerate(zip(items, weights, problems, strict=True)):
            line = {"source": os.path.abspath(item.path), "output": None, "kept": False, "weight": weight}
            if problem is not None and not (problem.reason == "labels" and item.copies == 0):
                line["reason"] = problem.reason
                if problem.reason in ("unreadable", "corrupt"):
                    line["error"] = problem.text
                elif problem.reason == "labels":
                    line["error"] = label_problems[index]
            elif item.copies == 0:  # not labelled either: only images used are
                line["reason"] = "weight"
            else:
                line.update(kept=True, reason="packed", copies=item.copies, output=str(dst))
                if space is not None:
                    line["labels"] = [n for n, v in zip(space.names, item.labels, strict=True) if v]
            entries.append(line)
        return {manifest_file.name: "".join(json.dumps(e) + "\n" for e in entries).encode(),
                SETTINGS_FILE: record_bytes("pack", settings)}

    start = time.perf_counter()
    meta = {"sources": [{"path": str(s.path), "weight": s.weight} for s in sources]}
    if space is not None:
        meta["labels"] = cfg.labels
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
            labels=space,
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


def _label(
    cfg: PackConfig, items: list, tag_sets: list[list[str] | None], missing: list[str],
    groups: dict[str, list[str]],
) -> tuple[LabelSpace, list, list[str | None]]:
    """The label space over the images packed, the items with their vectors, and each item's reason
    for having none (None when it has one)."""
    vocabulary = Vocabulary(cfg.vocabulary, cfg.top_k, cfg.min_count, cfg.exclude_tags,
                            {**groups, **cfg.label_groups})
    used = [i for i, item in enumerate(items) if item.copies > 0]
    try:
        labelled = label_images([tag_sets[i] for i in used], vocabulary)
    except DatasetError as exc:
        raise StageError(f"pack.labels={cfg.labels}: {exc}") from exc
    vectors, problems = [None] * len(items), [None] * len(items)
    for i, vector, problem in zip(used, labelled.vectors, labelled.problems, strict=True):
        vectors[i] = vector
        problems[i] = missing[i] if problem == "has no tags" else problem
    if used and all(vectors[i] is None for i in used):
        first = used[0]
        raise StageError(f"pack.labels={cfg.labels}: no image can be labelled ({len(used)} images; "
                         f"{printable(items[first].name)} {problems[first]})")
    items = [dataclasses.replace(item, labels=vector) for item, vector in zip(items, vectors, strict=True)]
    return labelled.space, items, problems


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return stage_cli("pack", PackConfig, run, argv, __doc__.split("\n")[0])


if __name__ == "__main__":
    sys.exit(main())
