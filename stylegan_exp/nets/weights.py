"""A network's variables by attribute path: the keys of snapshots, checkpoints' networks and imports."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from stylegan_exp.snapshot import SnapshotError, describe_mismatch


def variables_by_path(module: tf.Module) -> dict[str, tf.Variable]:
    """Every variable of a module keyed by its attribute path ('blocks/3/conv0/weight'): the snapshot keys."""
    found = module._flatten(predicate=lambda v: isinstance(v, tf.Variable), with_path=True)
    return {"/".join(str(p) for p in path): var for path, var in found}


def shapes_by_path(module: tf.Module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(var.shape) for name, var in variables_by_path(module).items()}


def weights_of(module: tf.Module) -> dict[str, np.ndarray]:
    return {name: var.numpy() for name, var in variables_by_path(module).items()}


def assign_shared_weights(net: tf.Module, weights: dict[str, np.ndarray], what: str) -> list[str]:
    """Copy the weights whose shapes fit (a square snapshot into a rectangle's network: every layer but the
    generator's constant, the noise maps and D's first dense layer); returns the variables left as they were.
    Missing or unexpected names are refused as in assign_weights: only shapes may differ."""
    expected = shapes_by_path(net)
    problems = describe_mismatch({k: expected.get(k, v.shape) for k, v in weights.items()}, expected)
    if problems:
        raise SnapshotError(f"{what} does not fit the network: {problems}")
    fresh = []
    for name, var in variables_by_path(net).items():
        if tuple(var.shape) == weights[name].shape:
            var.assign(weights[name])
        else:
            fresh.append(name)
    return fresh


def assign_weights(net: tf.Module, weights: dict[str, np.ndarray], what: str) -> None:
    """Copy weights into a network, naming every missing, unexpected or mis-shaped variable."""
    problems = describe_mismatch({k: v.shape for k, v in weights.items()}, shapes_by_path(net))
    if problems:
        raise SnapshotError(f"{what} does not fit the network: {problems}")
    for name, var in variables_by_path(net).items():
        var.assign(weights[name])
