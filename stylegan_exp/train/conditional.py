"""What a conditional run (model.conditional) needs besides the networks: a labelled dataset whose vocabulary
matches what it continues, the fakes grid's labels, the run's `labels.json`, and a transfer from an
unconditional snapshot in which the label weights start fresh."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import tensorflow as tf

from stylegan_exp.atomic import write_atomic
from stylegan_exp.config import ConfigError, ModelConfig
from stylegan_exp.data.dataset_format import LabelSpace, label_space_from_json
from stylegan_exp.nets.weights import variables_by_path
from stylegan_exp.snapshot import SnapshotError, describe_mismatch

log = logging.getLogger(__name__)

LABELS_FILE = "labels.json"  # a conditional run's vocabulary, beside its config.yaml
CONDITIONAL_ARCHS = ("stylegan", "stylegan2")


def run_labels(model: ModelConfig, labels: LabelSpace | None, dataset: Path) -> LabelSpace | None:
    """The label space a run conditions on: the dataset's for model.conditional=true (a one-line ConfigError
    without one, or for an architecture without conditioning), None for an unconditional model."""
    if not model.conditional:
        if labels is not None:
            log.info("the dataset %s is labelled (%d labels) but model.conditional=false: training "
                     "unconditionally", dataset, labels.dim)
        return None
    if model.ARCH not in CONDITIONAL_ARCHS:
        raise ConfigError(f"model.conditional=true is not available for {model.ARCH} (only for "
                          f"{', '.join(CONDITIONAL_ARCHS)})")
    if labels is None:
        raise ConfigError(f"model.conditional=true needs a labelled dataset, but {dataset} has no labels "
                          "(pack it with a label vocabulary, or set model.conditional=false)")
    labels.check()
    return labels


def write_run_labels(run_dir: Path, labels: LabelSpace) -> None:
    document = {"names": list(labels.names), "groups": dict(labels.groups)}
    write_atomic(Path(run_dir) / LABELS_FILE, (json.dumps(document, indent=2) + "\n").encode())


def checkpoint_labels(target: Path) -> LabelSpace | None:
    """The label space recorded by the run whose checkpoint `target` is (None when it recorded none)."""
    path = (target if target.is_dir() else target.parent).parent / LABELS_FILE
    if not path.is_file():
        return None
    return label_space_from_json(json.loads(path.read_text()))


def grid_labels(labels: np.ndarray, count: int, width: int) -> np.ndarray:
    """Labels of the fakes grid: one label vector per row (the dataset's distinct vectors, the most frequent
    first, cycling), so each row shows one label."""
    distinct, counts = np.unique(labels, axis=0, return_counts=True)
    order = distinct[np.argsort(-counts, kind="stable")]
    rows = np.arange(count) // max(width, 1)
    return order[rows % len(order)].astype(np.float32)


def transfer_weights(net: tf.Module, weights: dict[str, np.ndarray], what: str,
                     unconditional: dict[str, tuple[int, ...]]) -> list[str]:
    """Copy an unconditional snapshot's weights into a conditional network: every variable of the same name
    and shape; the others (label embedding, the mapping's widened first layer, D's label mapping and output
    layer) keep their fresh initialization. Returns their names. The weights must fit the network's
    unconditional counterpart (its shapes: `unconditional`) exactly, so nothing else starts fresh."""
    problems = describe_mismatch({k: v.shape for k, v in weights.items()}, unconditional)
    if problems:
        raise SnapshotError(f"{what} does not fit the network: {problems}")
    variables = variables_by_path(net)
    fresh = []
    for name, var in variables.items():
        if name in weights and tuple(weights[name].shape) == tuple(var.shape):
            var.assign(weights[name])
        else:
            fresh.append(name)
    return fresh
