"""What made a stage's folder: the settings that change its outputs, kept in `settings.json` beside its
manifest, so a rerun never mixes outputs made with other settings.

A stage's settings are its config (less knobs that only change speed) plus its input's: the record of the
stage folder it reads, or the resolved path of a plain folder or list file. A later stage's settings hold
every earlier stage's, so a change anywhere up the chain reaches every stage below it (the cascade). A rerun
with the same settings continues the folder; with other ones — or in a folder written before settings were
recorded — the folder is moved aside to `<folder>.old-<when it was made>` (never deleted) and the stage is
redone, said in one log line naming each changed key with its old and new value.

Shards of one stage may run at once: the folder's old record names its move (`.old-<made>`), so the first
shard moves it and the others' renames fail on the folder already there and find the new record instead.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from stylegan_exp.atomic import write_atomic

log = logging.getLogger(__name__)

SETTINGS_FILE = "settings.json"
UNRECORDED = "unrecorded"  # The `made` of a folder written before settings were recorded.
_SHOWN_CHANGES = 8


def own_settings(stage: str, cfg: Any, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """A stage config's fields as `<stage>.<field>` keys, less those in `exclude`."""
    skip = set(exclude)
    return {f"{stage}.{k}": v for k, v in dataclasses.asdict(cfg).items() if k not in skip}


def input_settings(src: str | os.PathLike) -> dict[str, Any]:
    """A stage folder's recorded settings, else the resolved path of the folder or list file."""
    record = read_record(Path(src))
    if record is not None:
        return record["settings"]
    return {"source": os.fsdecode(Path(src).resolve())}


def combine(own: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    """Own settings plus the input's, JSON-normalised; when a stage reads its own kind's folder (clean
    after clean) the input's keys all move under `input.` so neither hides the other."""
    if own.keys() & inputs.keys():
        inputs = {f"input.{k}": v for k, v in inputs.items()}
    return json.loads(json.dumps({**own, **inputs}))


def stage_settings(
    stage: str, cfg: Any, src: str | os.PathLike, exclude: Iterable[str] = ()
) -> dict[str, Any]:
    """The settings that make `stage`'s outputs from `src` with `cfg`."""
    return combine(own_settings(stage, cfg, exclude), input_settings(src))


def read_record(folder: Path) -> dict[str, Any] | None:
    """The folder's record ({stage, made, settings}), or None when it has none (or an unreadable one)."""
    try:
        record = json.loads((folder / SETTINGS_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("settings"), dict):
        return None
    return record


def record_bytes(stage: str, settings: dict[str, Any]) -> bytes:
    """settings.json's content for outputs made now with `settings`."""
    made = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    record = {"stage": stage, "made": made, "settings": settings}
    return (json.dumps(record, indent=1, sort_keys=True) + "\n").encode()


def changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    """`key: old → new; …` for every key whose value differs (`unset` where a side lacks it)."""
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k, _UNSET) != new.get(k, _UNSET))
    shown = [f"{k}: {_show(old.get(k, _UNSET))} → {_show(new.get(k, _UNSET))}" for k in keys[:_SHOWN_CHANGES]]
    more = f"; and {len(keys) - _SHOWN_CHANGES} more" if len(keys) > _SHOWN_CHANGES else ""
    return "; ".join(shown) + more


_UNSET = object()


def _show(value: Any) -> str:
    if value is _UNSET:
        return "unset"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return os.fsencode(text).decode("utf-8", "backslashreplace")


def _has_outputs(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("manifest*.jsonl"))


def _holds(folder: Path, paths: Iterable[Path]) -> Path | None:
    """The first of `paths` inside `folder` (or `folder` itself), if any."""
    root = os.path.abspath(folder)
    for path in paths:
        p = os.path.abspath(path)
        if p == root or p.startswith(root + os.sep):
            return Path(path)
    return None


def retire(dst: Path, settings: dict[str, Any], stage: str, inputs: Iterable[Path] = ()) -> Path | None:
    """Move `dst` aside when it holds outputs made with other or unrecorded settings; returns where to (None
    when nothing was moved, also when another shard moved it first). A folder holding the stage's own inputs
    is never moved: that is one line instead."""
    record = read_record(dst)
    if (record is not None and record["settings"] == settings) or not _has_outputs(dst):
        return None
    made = str(record.get("made", UNRECORDED)) if record is not None else UNRECORDED
    target = dst.with_name(f"{dst.name}.old-{made}")
    if record is None:
        why = f"{dst} has no record of the settings that made it (written by an older version)"
    else:
        why = f"settings changed since {dst} was made ({changes(record['settings'], settings)})"
    from stylegan_exp.data.manifest import StageError, printable

    inside = _holds(dst, inputs)
    if inside is not None:
        raise StageError(f"{stage}: {printable(why)}, but it holds the stage's own input "
                         f"{printable(inside)}; give the stage another output folder")
    try:
        os.rename(dst, target)
    except FileNotFoundError:
        return None  # Another shard moved it.
    except OSError as exc:
        if read_record(dst) == record and target.exists():
            raise StageError(f"{stage}: {printable(why)}, but {printable(target)} is in the way of moving it "
                             "aside; remove or rename one of them") from exc
        return None  # Another shard moved it and started the new folder.
    log.warning("%s: %s; moved it to %s and redoing the stage", stage, printable(why), printable(target))
    return target


def claim(dst: Path, settings: dict[str, Any], stage: str, inputs: Iterable[Path] = ()) -> Path | None:
    """Make `dst` a folder for outputs made with `settings`: kept when its record matches, else moved aside
    (`retire`) and started anew with this record. Returns where an old folder went, or None."""
    moved = retire(dst, settings, stage, inputs)
    record = read_record(dst)
    if record is None or record["settings"] != settings:
        dst.mkdir(parents=True, exist_ok=True)
        write_atomic(dst / SETTINGS_FILE, record_bytes(stage, settings))
    return moved
