"""What every preparation stage shares: inputs, shards, the resumable manifest, the per-item driver
(worker pool, progress bar, atomic outputs, the folder's settings record: data/settings.py), the summary
table, the contact sheet and the CLI.

A stage is a picklable ``work(key, path) -> list[Outcome]`` run over its sorted inputs. The driver writes
each item's outputs atomically, then appends its manifest lines in one flushed write, so a run
killed at any moment resumes by skipping the sources already in the manifest.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import multiprocessing
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from stylegan_exp.atomic import write_atomic
from stylegan_exp.data.images import (
    IMAGE_SUFFIXES,
    ImageError,
    ImageTooLargeError,
    load_image,
    save_image,
    suffix_for,
)
from stylegan_exp.data.labels import parse_group
from stylegan_exp.data.prepare_config import RunOptions
from stylegan_exp.data.settings import claim
from stylegan_exp.progress import progress_bar

MANIFEST = "manifest"
_THUMB = 96
_SHEET_SAMPLES = 16


class StageError(ValueError):
    """Bad input to a stage (missing folder, bad option); the message is one line naming the culprit."""


@dataclass
class Outcome:
    """One manifest line: `output` is relative to the stage's folder; `data` its encoded bytes
    (written by the driver); `extra` is recorded too (e.g. hashes that later decisions need)."""

    output: str | None
    kept: bool
    reason: str
    data: bytes | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class StageResult:
    stage: str
    dst: Path
    kept: int
    dropped: int
    reasons: Counter
    processed: int
    seconds: float
    manifest: Path

    def table(self) -> str:
        """The summary printed at the end of a stage: counts per outcome and reason."""
        rows = [(("kept" if kept else "dropped"), reason, n) for (kept, reason), n in self.reasons.items()]
        rows.sort(key=lambda r: (r[0] != "kept", -r[2], r[1]))
        width = max([len(r[1]) for r in rows] + [6])
        lines = [
            f"{self.stage}: {self.kept} kept, {self.dropped} dropped ({self.processed} processed "
            f"now in {self.seconds:.1f}s) -> {printable(self.dst)}"
        ]
        lines += [f"  {status:<8} {reason:<{width}} {n:>8}" for status, reason, n in rows]
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Inputs and shards


def _entries(folder: Path) -> list[dict]:
    return [e for path in sorted(folder.glob(f"{MANIFEST}*.jsonl")) for e in Manifest.read(path)]


def _is_stage_folder(src: Path) -> bool:
    return src.is_dir() and any(src.glob(f"{MANIFEST}*.jsonl"))


def _input_key(entry: dict) -> str:
    """The key the next stage reads a kept output under: an absolute output (select's) keeps the key it
    had, so equal names in different folders stay apart."""
    return entry["output"] if not Path(entry["output"]).is_absolute() else entry["source"]


def input_tags(src: str | os.PathLike) -> dict[str, list[str]]:
    """The tags a previous stage's kept outputs carry, by input key (none for a plain folder or list)."""
    src = Path(src)
    if not _is_stage_folder(src):
        return {}
    return {_input_key(e): e["tags"] for e in _entries(src) if e["kept"] and e["output"] and "tags" in e}


def resolve_inputs(src: str | os.PathLike) -> list[tuple[str, Path]]:
    """(key, path) of every input, sorted by key: a previous stage's folder (its kept outputs), a list
    file (one path a line, relative to the file) or a plain folder of images (recursive; links are
    listed even when broken, so the stage can say so). No input at all is a StageError."""
    src = Path(src)
    if src.is_file():
        lines = [os.fsdecode(line.strip()) for line in src.read_bytes().splitlines()]
        paths = [src.parent / line for line in lines if line and not line.startswith("#")]
        items = [(p.name if p.is_absolute() else p.relative_to(src.parent).as_posix(), p) for p in paths]
        what = "lists no images"
    elif _is_stage_folder(src):
        items = [(_input_key(e), src / e["output"]) for e in _entries(src) if e["kept"] and e["output"]]
        what = "has no kept outputs"
    elif src.is_dir():
        items = [
            (p.relative_to(src).as_posix(), p)
            for p in src.rglob("*")
            if p.suffix.lower() in IMAGE_SUFFIXES
            and not any(part.startswith(".") for part in p.relative_to(src).parts)
            and (p.is_file() or p.is_symlink())
        ]
        what = f"holds no images ({' '.join(IMAGE_SUFFIXES)})"
    else:
        raise StageError(f"input {printable(src)} does not exist")
    if not items:
        raise StageError(f"input {printable(src)} {what}")
    return sorted(items)


def printable(path: str | os.PathLike) -> str:
    """A path fit for a terminal or log line: bytes that are not UTF-8 shown as \\xNN escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def stable_hash(key: str) -> int:
    """A hash that is the same in every process and on every machine (unlike hash()); any file name
    works, also one whose bytes are not UTF-8."""
    return int.from_bytes(hashlib.sha1(os.fsencode(key)).digest()[:8], "big")


def output_name(key: str, image_format: str, tag: str = "") -> str:
    """Where a stage writes what it made from input `key`: the same relative path, `tag` added to the
    stem, with the suffix of the encoding."""
    path = Path(key)
    return path.with_name(f"{path.stem}{tag}{suffix_for(image_format)}").as_posix()


def in_shard(key: str, index: int, count: int) -> bool:
    return stable_hash(key) % count == index


def check_options(options: RunOptions) -> None:
    if options.shard_count < 1 or not 0 <= options.shard_index < options.shard_count:
        raise StageError(
            f"shard index {options.shard_index} is not in [0, shard count {options.shard_count})"
        )
    if options.limit is not None and options.limit < 0:
        raise StageError(f"limit must be >= 0, got {options.limit}")


def check_output_dir(dst: Path) -> None:
    """A stage's output folder (or one of its parents) must not be a file."""
    for path in (dst, *dst.parents):
        if path.exists() and not path.is_dir():
            raise StageError(f"output {printable(path)} is a file, not a folder")


def manifest_path(dst: Path, options: RunOptions) -> Path:
    if options.shard_count == 1:
        return dst / f"{MANIFEST}.jsonl"
    return dst / f"{MANIFEST}.shard-{options.shard_index:05d}-of-{options.shard_count:05d}.jsonl"


# ----------------------------------------------------------------------------------------------
# Manifest


class Manifest:
    """An append-only JSON-lines file. Every source's lines carry `parts` (how many lines it has), so
    a source whose lines were cut short by a kill is dropped on reopening and done again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        text = path.read_text() if path.exists() else ""
        self.entries = self._complete(self._parse(text))
        if text.count("\n") != len(self.entries) or (text and not text.endswith("\n")):
            write_atomic(path, "".join(json.dumps(e) + "\n" for e in self.entries).encode())
        self.done = {e["source"] for e in self.entries}
        self._file = open(path, "a")  # noqa: SIM115 - held open for the stage's lifetime, closed by close()

    @classmethod
    def read(cls, path: Path) -> list[dict]:
        """Every complete line (a line cut off by a kill is ignored)."""
        return cls._parse(path.read_text()) if path.exists() else []

    @staticmethod
    def _parse(text: str) -> list[dict]:
        entries = []
        for line in text.splitlines():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return entries

    @staticmethod
    def _complete(entries: list[dict]) -> list[dict]:
        counts = Counter(e["source"] for e in entries)
        return [e for e in entries if counts[e["source"]] == e.get("parts", 1)]

    def record(self, source: str, outcomes: list[Outcome]) -> list[dict]:
        lines = [
            {
                "source": source,
                "output": o.output,
                "kept": o.kept,
                "reason": o.reason,
                "parts": len(outcomes),
                **o.extra,
            }
            for o in outcomes
        ]
        self._file.write("".join(json.dumps(line) + "\n" for line in lines))
        self._file.flush()
        self.entries += lines
        self.done.add(source)
        return lines

    def close(self) -> None:
        self._file.close()


# ----------------------------------------------------------------------------------------------
# The driver


def user_error(exc: BaseException) -> str:
    """One line for an `error:` exit: a StageError as it is, an OSError (permissions, a full disk)
    with the path it concerns."""
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.strerror or exc}: {printable(exc.filename)}"
    return " ".join(str(exc).split())


def error_text(exc: BaseException) -> str:
    """An error message fit for a manifest: without object addresses, which differ between runs."""
    return re.sub(r" at 0x[0-9a-f]+", "", str(exc))


def link_problem(path: Path) -> Outcome | None:
    """A manifest line for a dangling link or a link loop (`broken-link`), or None."""
    if not path.is_symlink():
        return None
    try:
        path.stat()
    except OSError as exc:
        return Outcome(None, False, "broken-link", extra={"error": f"{exc.strerror}: {os.readlink(path)}"})
    return None


def _outcomes(work: Callable[[str, Path], list[Outcome]], item: tuple[str, Path]) -> list[Outcome]:
    problem = link_problem(item[1])
    if problem is not None:
        return [problem]
    try:
        return work(*item)
    except ImageTooLargeError as exc:
        return [Outcome(None, False, "too-large", extra={"error": error_text(exc)})]
    except ImageError as exc:
        return [Outcome(None, False, "unreadable", extra={"error": error_text(exc)})]


def _results(
    work: Callable[[str, Path], list[Outcome]], items: list[tuple[str, Path]], workers: int
) -> Iterator[tuple[str, list[Outcome]]]:
    """Outcomes in input order; a pool of spawned processes (no inherited TF/OpenCV threads) when
    there is enough work for more than one."""
    keys = [key for key, _ in items]
    # Inside a launcher's worker (joblib/loky sweeps) the launcher already spreads jobs over cores, and
    # a nested pool would inherit a start method it cannot use: run in this process.
    nested = (
        multiprocessing.parent_process() is not None
        or multiprocessing.current_process().name != "MainProcess"
    )
    if nested or workers <= 1 or len(items) < 2 * workers:
        yield from zip(keys, (_outcomes(work, item) for item in items), strict=True)
        return
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers) as pool:
        results = pool.imap(_Call(work), items, chunksize=max(1, min(16, len(items) // (8 * workers))))
        yield from zip(keys, results, strict=True)


@dataclass
class _Call:
    work: Callable[[str, Path], list[Outcome]]

    def __call__(self, item: tuple[str, Path]) -> list[Outcome]:
        return _outcomes(self.work, item)


def run_stage(
    stage: str,
    items: list[tuple[str, Path]],
    dst: str | os.PathLike,
    work: Callable[[str, Path], list[Outcome]],
    options: RunOptions,
    *,
    settings: dict,
    decide: Callable[[str, list[Outcome], list[dict]], list[Outcome]] | None = None,
    tags: Mapping[str, list[str]] | None = None,
) -> StageResult:
    """Run `work` over the items of this shard not yet in the manifest (at most `options.limit`), in a
    folder made with `settings` (data/settings.py: one made with others is moved aside first).
    `decide(key, outcomes, entries so far)` runs in order in this process, for choices that depend
    on earlier items (exact duplicates), and so stays deterministic with any number of workers.
    `tags` (input_tags of the stage's input) go with every kept output of their item: a crop inherits
    its source's tags, an augmented copy its original's."""
    check_options(options)
    dst = Path(dst)
    check_output_dir(dst)
    claim(dst, settings, stage, (path for _, path in items))
    manifest = Manifest(manifest_path(dst, options))
    todo = [
        (k, p)
        for k, p in items
        if in_shard(k, options.shard_index, options.shard_count) and k not in manifest.done
    ]
    if options.limit is not None:
        todo = todo[: options.limit]
    workers = options.workers or os.cpu_count() or 1
    start = time.perf_counter()
    try:
        bar = progress_bar(total=len(todo), desc=stage, unit="img", enabled=options.progress)
        for key, outcomes in _results(work, todo, workers):
            if decide is not None:
                outcomes = decide(key, outcomes, manifest.entries)
            if tags and key in tags:
                for o in outcomes:
                    if o.kept:
                        o.extra["tags"] = tags[key]
            for o in outcomes:
                if o.kept and o.data is not None:
                    write_atomic(dst / o.output, o.data)
            manifest.record(key, outcomes)
            bar.update()
        bar.close()
    finally:
        manifest.close()
    result = summarize(stage, dst, manifest.entries, len(todo), time.perf_counter() - start, manifest.path)
    if options.contact_sheet:
        sheet = manifest.path.name.replace(MANIFEST, "contact_sheet", 1).replace(".jsonl", ".png")
        contact_sheet(manifest.entries, dst, dict(items), dst / sheet)
    return result


def summarize(
    stage: str, dst: Path, entries: list[dict], processed: int, seconds: float, path: Path
) -> StageResult:
    reasons = Counter((bool(e["kept"]), e["reason"]) for e in entries)
    kept = sum(n for (k, _), n in reasons.items() if k)
    return StageResult(stage, dst, kept, sum(reasons.values()) - kept, reasons, processed, seconds, path)


# ----------------------------------------------------------------------------------------------
# Contact sheet


def _thumb(path: Path | None) -> np.ndarray:
    tile = np.full((_THUMB, _THUMB, 3), 128, np.uint8)
    if path is None:
        return tile
    try:
        image = Image.fromarray(load_image(path, channels=3))
    except (ImageError, OSError):
        return tile
    image.thumbnail((_THUMB, _THUMB))
    x, y = (_THUMB - image.width) // 2, (_THUMB - image.height) // 2
    tile[y : y + image.height, x : x + image.width] = np.asarray(image)
    return tile


def contact_sheet(entries: list[dict], dst: Path, sources: dict[str, Path], path: Path) -> Path:
    """A PNG for a quick look: a row block of kept outputs, then dropped sources with their reasons."""
    kept = [e for e in entries if e["kept"] and e["output"]][:_SHEET_SAMPLES]
    dropped = [e for e in entries if not e["kept"]][:_SHEET_SAMPLES]
    cols = 8
    label = 14
    blocks = []
    for title, group, pick in (
        ("kept", kept, lambda e: dst / e["output"]),
        ("dropped", dropped, lambda e: sources.get(e["source"])),
    ):
        rows = max(1, -(-len(group) // cols))
        sheet = Image.new("RGB", (cols * _THUMB, label + rows * (_THUMB + label)), (32, 32, 32))
        draw = ImageDraw.Draw(sheet)
        draw.text((4, 1), f"{title} ({len(group)} shown)", fill=(255, 255, 255))
        for i, e in enumerate(group):
            x, y = (i % cols) * _THUMB, label + (i // cols) * (_THUMB + label)
            sheet.paste(Image.fromarray(_thumb(pick(e))), (x, y))
            draw.text((x + 2, y + _THUMB + 1), str(e["reason"])[:15], fill=(255, 220, 120))
        blocks.append(np.asarray(sheet))
    save_image(np.concatenate(blocks, axis=0), path)
    return path


# ----------------------------------------------------------------------------------------------
# Command line


def _arg_type(annotation: str) -> tuple[type, dict]:
    base = annotation.replace(" | None", "")
    if base == "bool":
        return bool, {"action": argparse.BooleanOptionalAction}
    if base.startswith("list["):
        inner = {"int": int, "float": float, "str": str}.get(base[5:-1])
        return list, ({"nargs": "*", "type": inner} if inner else {})
    if base == "dict[str, list[str]]":  # NAME=a,b,c … (pack's label groups)
        return dict, {"nargs": "*", "type": parse_group}
    return {"int": int, "float": float, "str": str}.get(base, str), {}


def stage_cli(
    stage: str,
    config_cls: type,
    run: Callable[[str, str, object, RunOptions], StageResult],
    argv: list[str] | None,
    description: str,
) -> int:
    """`python -m stylegan_exp.data.<stage> SRC DST --option value …`: every field of the stage's
    config and of RunOptions is an option, so the CLI and the Hydra config cannot drift apart."""
    parser = argparse.ArgumentParser(prog=f"python -m stylegan_exp.data.{stage}", description=description)
    parser.add_argument("src", help="input: a folder, a previous stage's folder or a list file")
    parser.add_argument("dst", help="output folder (rerun to continue an interrupted run)")
    groups = {"stage": config_cls, "run": RunOptions}
    for cls in groups.values():
        for f in dataclasses.fields(cls):
            kind, extra = _arg_type(str(f.type))
            if kind is list and not extra:
                continue  # Structured lists (pack sources) are given positionally.
            opts = extra if extra else {"type": kind}
            if kind is not bool:
                opts["metavar"] = f.name.upper()
            parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f"{cls.__name__}.{f.name}", **opts)
    args = vars(parser.parse_args(argv))
    values = {name: {} for name in groups}
    for name, cls in groups.items():
        for f in dataclasses.fields(cls):
            value = args.get(f"{cls.__name__}.{f.name}")
            if value is not None:
                values[name][f.name] = dict(value) if str(f.type).startswith("dict[") else value
    try:
        result = run(args["src"], args["dst"], config_cls(**values["stage"]), RunOptions(**values["run"]))
    except (StageError, OSError) as exc:
        print(f"error: {user_error(exc)}", file=sys.stderr)
        return 1
    print(result.table())
    return 0
