"""Continuing a network snapshot in a new run (transfer, resume from a snapshot): the run adopts the
snapshot's architecture, so the networks compute what the snapshot's did, and a snapshot saved while growing
continues at its level of detail."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Any

from stylegan_exp.config import ConfigError, ModelConfig


def architecture_differences(composed: ModelConfig, theirs: ModelConfig) -> dict[str, tuple[Any, Any]]:
    """Override key → (composed value, theirs) for every field that is not the run's own (`run_owned`) and
    differs (`model.<key>`), or for the architecture as a whole (`model`)."""
    if type(theirs) is not type(composed):
        return {"model": (composed.ARCH, theirs.ARCH)}
    found = {}
    for field in dataclasses.fields(composed):
        ours, value = getattr(composed, field.name), getattr(theirs, field.name)
        if field.name not in composed.run_owned_fields() and ours != value:
            found[f"model.{field.name}"] = (ours, value)
    return found


def implied_overrides(composed: ModelConfig, theirs: ModelConfig) -> str:
    """The command-line overrides that turn the composed model into `theirs` architecture."""
    differences = architecture_differences(composed, theirs)
    return " ".join(f"{key}={value}" for key, (_, value) in differences.items())


def adopt_architecture(composed: ModelConfig, theirs: ModelConfig, source: str,
                       explicit: Collection[str] = ()) -> tuple[ModelConfig, list[str]]:
    """The composed model config with the snapshot's architecture, and one line per adopted value; a value
    set on the command line (`model` or `model.<key>` in `explicit`) that contradicts it is a ConfigError
    naming both."""
    differences = architecture_differences(composed, theirs)
    conflicts = [f"{key}={ours} contradicts the snapshot's {value}"
                 for key, (ours, value) in differences.items() if key in explicit]
    if conflicts:
        raise ConfigError(f"{source}: {'; '.join(conflicts)}; drop the override to continue the snapshot")
    lines = [f"{key}={value} from {source} (the composed model has {ours})"
             for key, (ours, value) in differences.items()]
    if "model" in differences:  # another architecture: its config, with this run's training choices
        training = {k: getattr(composed, k) for k in composed.run_owned_fields() & theirs.run_owned_fields()
                    if k != "name"}
        return dataclasses.replace(theirs, **training), lines
    changes = {key.removeprefix("model."): value for key, (_, value) in differences.items()}
    return dataclasses.replace(composed, **changes), lines
