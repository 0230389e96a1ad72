"""One tracker interface: a local metrics.jsonl that is always written, and wandb (offline by default)."""

from __future__ import annotations

import json
import logging
import math
import os
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Tracker(Protocol):
    def log(self, metrics: dict[str, float], kimg: float) -> None: ...

    def log_image(self, key: str, path: Path, kimg: float, caption: str | None = None) -> None: ...

    def alert(self, title: str, text: str) -> None: ...

    def log_artifact(self, path: Path, name: str, type: str) -> None: ...

    def close(self) -> None: ...


def _jsonable(value: float) -> float | None:
    return None if isinstance(value, float) and not math.isfinite(value) else value


class JsonlTracker:
    """Appends one JSON object per log call, so a crashed or resumed run keeps one continuous file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")

    def log(self, metrics: dict[str, float], kimg: float) -> None:
        row = {"kimg": kimg, **{k: _jsonable(v) for k, v in metrics.items()}}
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def log_image(self, key: str, path: Path, kimg: float, caption: str | None = None) -> None:
        self.log({key: str(path), **({f"{key}/caption": caption} if caption else {})}, kimg)

    def alert(self, title: str, text: str) -> None:
        self._file.write(json.dumps({"alert": title, "text": text}) + "\n")
        self._file.flush()

    def log_artifact(self, path: Path, name: str, type: str) -> None:
        """Snapshots already sit in the run directory; nothing to add locally."""

    def close(self) -> None:
        self._file.close()


class TrackingError(RuntimeError):
    """A tracker that cannot start, in words a user can act on."""


# A run killed hard (SIGKILL, out of memory) leaves its wandb service holding the run until that notices.
RUN_IN_USE_WAIT_SECONDS = 60


class WandbTracker:
    """wandb run keyed by kimg (`define_metric`), initialised with the resolved config."""

    def __init__(self, run_dir: Path, *, mode: str, project: str, name: str, config: dict[str, Any],
                 entity: str | None = None, group: str | None = None, tags: list[str] | None = None,
                 run_id: str | None = None) -> None:
        import wandb

        self._wandb = wandb
        deadline = time.monotonic() + RUN_IN_USE_WAIT_SECONDS
        while True:
            try:
                self.run = wandb.init(
                    dir=str(run_dir), mode=mode, project=project, entity=entity, name=name, group=group,
                    tags=tags or None, config=config, id=run_id, resume="allow" if run_id else None,
                    settings=wandb.Settings(console="off", x_disable_stats=True),
                )
                break
            except Exception as exc:  # wandb raises its service's errors as several private classes
                if not (run_id and "is in use" in str(exc)):
                    raise
                if os.environ.get("WANDB_SERVICE"):  # a service shared with the parent keeps the run for good
                    raise TrackingError(
                        f"wandb run {run_id} is held by the wandb service this process inherited "
                        f"(WANDB_SERVICE={os.environ['WANDB_SERVICE']}): unset it, then resume again"
                    ) from None
                if time.monotonic() > deadline:
                    raise TrackingError(
                        f"wandb run {run_id} is still held by the interrupted run's wandb process after "
                        f"{RUN_IN_USE_WAIT_SECONDS} s: wait for it to exit (or end it), then resume again"
                    ) from None
                log.info("wandb run %s is still held by the interrupted run's wandb process: waiting", run_id)
                time.sleep(2.0)
        self.run.define_metric("kimg")
        self.run.define_metric("*", step_metric="kimg")
        log.info("wandb run %s (%s) in %s", self.run.id, mode, run_dir)

    @property
    def run_id(self) -> str:
        return self.run.id

    def log(self, metrics: dict[str, float], kimg: float) -> None:
        self.run.log({"kimg": kimg, **metrics})

    def log_image(self, key: str, path: Path, kimg: float, caption: str | None = None) -> None:
        self.run.log({"kimg": kimg, key: self._wandb.Image(str(path), caption=caption)})

    def alert(self, title: str, text: str) -> None:
        """A WARN alert (email/Slack) online; offline runs cannot send one, so it goes to the log."""
        if self.run.offline:
            log.warning("wandb is offline, alert not sent: %s: %s", title, text)
            return
        self.run.alert(title=title, text=text, level=self._wandb.AlertLevel.WARN)

    def log_artifact(self, path: Path, name: str, type: str) -> None:
        artifact = self._wandb.Artifact(name, type=type)
        artifact.add_file(str(path))
        self.run.log_artifact(artifact)

    def close(self) -> None:
        """Finish the run; offline, also wait until its log is on disk, so it can be read or synced."""
        sync_file, offline = Path(self.run.settings.sync_file), self.run.offline
        self.run.finish()
        if offline:
            _wait_for_exit_record(sync_file)


def _wait_for_exit_record(path: Path, timeout: float = 30.0) -> None:
    # wandb's service can still be writing the transaction log when finish() returns.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and any(r.WhichOneof("record_type") == "exit" for r in wandb_records(path)):
            return
        time.sleep(0.05)
    log.warning("wandb offline log %s has no exit record after %.0fs; it may be incomplete", path, timeout)


class MultiTracker:
    """Fans every call out to several trackers."""

    def __init__(self, trackers: list[Tracker]) -> None:
        self.trackers = trackers

    def log(self, metrics: dict[str, float], kimg: float) -> None:
        for t in self.trackers:
            t.log(metrics, kimg)

    def log_image(self, key: str, path: Path, kimg: float, caption: str | None = None) -> None:
        for t in self.trackers:
            if caption:
                t.log_image(key, path, kimg, caption=caption)
            else:
                t.log_image(key, path, kimg)

    def alert(self, title: str, text: str) -> None:
        for t in self.trackers:
            t.alert(title, text)

    def log_artifact(self, path: Path, name: str, type: str) -> None:
        for t in self.trackers:
            t.log_artifact(path, name, type)

    def close(self) -> None:
        for t in self.trackers:
            t.close()


# ----------------------------------------------------------------------------------------------
# Reading offline runs back. wandb writes no readable history offline (`wandb sync` makes it from the
# run's `.wandb` transaction log), so tests and users read that log: a LevelDB-style log of protobuf
# Records, a 7-byte file header, then 32 KiB blocks of chunks each with a 7-byte header.

_WANDB_HEADER = struct.Struct("<4sHB")  # ":W&B", magic 0xBEE1, version
_CHUNK_HEADER = struct.Struct("<IHB")  # crc32c (unchecked), length, type: 1 full, 2 first, 3 middle, 4 last
_BLOCK = 32768


def wandb_records(path: Path) -> Iterator[Any]:
    """The `wandb_internal_pb2.Record`s of one `.wandb` file, in order."""
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    if len(data) < _WANDB_HEADER.size:  # just created
        return
    ident, magic, _ = _WANDB_HEADER.unpack_from(data)
    if (ident, magic) != (b":W&B", 0xBEE1):
        raise ValueError(f"{path} is not a wandb transaction log")
    pos, pending = _WANDB_HEADER.size, b""
    while pos + _CHUNK_HEADER.size <= len(data):
        room = _BLOCK - pos % _BLOCK
        _, length, kind = _CHUNK_HEADER.unpack_from(data, pos) if room >= _CHUNK_HEADER.size else (0, 0, 0)
        if kind == 0:  # block trailer padding
            pos += room
            continue
        end = pos + _CHUNK_HEADER.size + length
        if end > len(data):  # still being written
            return
        chunk = data[pos + _CHUNK_HEADER.size:end]
        pos = end
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def offline_history(run_dir: Path) -> list[dict[str, Any]]:
    """Every history row logged by the wandb runs under `run_dir` (resumed runs in order).

    Keys are flattened with "/" (an image under "fakes" gives "fakes/path", "fakes/_type", …); values
    are decoded from JSON. wandb's own `_step`, `_runtime` and `_timestamp` are kept.
    """
    rows = []
    for path in sorted(Path(run_dir).glob("**/wandb/*run-*/run-*.wandb")):
        for record in wandb_records(path):
            if record.WhichOneof("record_type") == "history":
                rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                             for item in record.history.item})
    return rows
