"""What `prepare.py` hands its config to: run the chosen stages in order, each reading the previous
stage's folder (`work_dir/<stage>/`), the first one reading `source`, pack writing `dataset_dir`.

A sharded multirun (``-m run.shard_count=N run.shard_index=0,…,N-1``) should run one stage at a time,
since a stage reads every shard's results of the stage before it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from stylegan_exp.aspect import AspectError, parse_aspect
from stylegan_exp.data import augment, clean, crop, dedupe, resize, select
from stylegan_exp.data.dataset_format import INFO_FILE
from stylegan_exp.data.manifest import (
    MANIFEST,
    StageError,
    StageResult,
    check_options,
    check_output_dir,
    printable,
    resolve_inputs,
)
from stylegan_exp.data.pack import check_labels
from stylegan_exp.data.prepare_config import STAGES, PrepareConfig

log = logging.getLogger(__name__)

_MODULES = {
    "select": select,
    "crop": crop,
    "clean": clean,
    "dedupe": dedupe,
    "resize": resize,
    "augment": augment,
}


def check_config(cfg: PrepareConfig) -> None:
    """Fail before any work on what can be checked up front, naming the culprit: stages, options, a
    work or output folder that is a file, a dataset folder in the way, a source without images."""
    unknown = [s for s in cfg.stages if s not in STAGES]
    if unknown:
        raise StageError(f"unknown stage {unknown[0]!r} in stages (choose from {', '.join(STAGES)})")
    order = [STAGES.index(s) for s in cfg.stages]
    if order != sorted(set(order)):
        raise StageError(f"stages {list(cfg.stages)} are repeated or out of order ({', '.join(STAGES)})")
    check_options(cfg.run)
    try:
        parse_aspect(cfg.aspect, "aspect")
    except AspectError as exc:
        raise StageError(str(exc)) from None
    if "pack" in cfg.stages and cfg.run.shard_count > 1:
        raise StageError("pack writes one dataset and cannot be sharded; run it without run.shard_count")
    for stage in cfg.stages:
        if stage != "pack":
            check_output_dir(Path(cfg.work_dir) / stage)
    if "pack" in cfg.stages:
        _check_dataset_dir(Path(cfg.dataset_dir))
        check_labels(cfg.pack)
    first = cfg.stages[0] if cfg.stages else None
    if "pack" in cfg.stages and first != "pack" and cfg.pack.labels == "sidecar" and not cfg.pack.sources:
        raise StageError("pack.labels=sidecar reads a folder's labels.csv, but pack reads the previous "
                         "stage's outputs: give the sidecar to select (select.label_file=PATH) and use "
                         "pack.labels=tags")
    if first == "pack" and cfg.pack.sources:
        for source in cfg.pack.sources:
            resolve_inputs(source.path)
    elif first:
        if cfg.source is None:
            raise StageError(f"source is not set (the input of the first stage, {first})")
        if not Path(cfg.source).exists():
            raise StageError(f"source {printable(cfg.source)} does not exist")
        if not (first == "select" and cfg.select.metadata):  # Else source is the image root.
            resolve_inputs(cfg.source)


def _check_dataset_dir(path: Path) -> None:
    """The dataset folder may be absent, empty or a finished pack (which is not redone)."""
    check_output_dir(path)
    if path.is_dir() and any(path.iterdir()) and not (
        (path / INFO_FILE).is_file() and (path / f"{MANIFEST}.jsonl").is_file()
    ):
        raise StageError(
            f"dataset_dir {printable(path)} already holds files that are not a finished pack; "
            "remove them or choose another dataset_dir"
        )


def run_prepare(cfg: DictConfig | PrepareConfig) -> list[StageResult]:
    """Run cfg.stages; returns each stage's result (also logged as a summary table)."""
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_object(cfg)
    check_config(cfg)
    work = Path(cfg.work_dir)
    src: str | None = cfg.source
    results = []
    for stage in cfg.stages:
        if stage == "pack":
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            from stylegan_exp.data import pack  # TensorFlow only when packing.

            result = pack.run(src, cfg.dataset_dir, cfg.pack, cfg.run)
        else:
            result = _MODULES[stage].run(src, work / stage, getattr(cfg, stage), cfg.run)
        log.info("%s", result.table())
        results.append(result)
        src = str(result.dst)
    return results
