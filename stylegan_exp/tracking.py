"""One tracker interface: a local metrics.jsonl that is always written, and wandb (offline by default)."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Tracker(Protocol):
    def log(self, metrics: dict[str, float], kimg: float) -> None: ...

    def log_image(self, key: str, path: Path, kimg: float) -> None: ...

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

    def log_image(self, key: str, path: Path, kimg: float) -> None:
        self.log({key: str(path)}, kimg)

    def close(self) -> None:
        self._file.close()


class WandbTracker:
    """wandb run keyed by kimg (`define_metric`), initialised with the resolved config."""

    def __init__(self, run_dir: Path, *, mode: str, project: str, name: str, config: dict[str, Any],
                 entity: str | None = None, group: str | None = None, tags: list[str] | None = None,
                 run_id: str | None = None) -> None:
        import wandb

        self._wandb = wandb
        self.run = wandb.init(
            dir=str(run_dir), mode=mode, project=project, entity=entity, name=name, group=group,
            tags=tags or None, config=config, id=run_id, resume="allow" if run_id else None,
            settings=wandb.Settings(console="off", x_disable_stats=True),
        )
        self.run.define_metric("kimg")
        self.run.define_metric("*", step_metric="kimg")
        log.info("wandb run %s (%s) in %s", self.run.id, mode, run_dir)

    @property
    def run_id(self) -> str:
        return self.run.id

    def log(self, metrics: dict[str, float], kimg: float) -> None:
        self.run.log({"kimg": kimg, **metrics})

    def log_image(self, key: str, path: Path, kimg: float) -> None:
        self.run.log({"kimg": kimg, key: self._wandb.Image(str(path))})

    def close(self) -> None:
        self.run.finish()


class MultiTracker:
    """Fans every call out to several trackers."""

    def __init__(self, trackers: list[Tracker]) -> None:
        self.trackers = trackers

    def log(self, metrics: dict[str, float], kimg: float) -> None:
        for t in self.trackers:
            t.log(metrics, kimg)

    def log_image(self, key: str, path: Path, kimg: float) -> None:
        for t in self.trackers:
            t.log_image(key, path, kimg)

    def close(self) -> None:
        for t in self.trackers:
            t.close()
