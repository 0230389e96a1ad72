"""The memory plan of a training run before it starts: `python -m stylegan_exp.plan <train.py overrides>`
composes the run as train.py would and prints, per resolution, the parameters, activations per image, the
per-device batch and accumulation, and the estimated peak memory; it exits 1 with one line when a resolution
does not fit."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir

from stylegan_exp.aspect import parse_aspect
from stylegan_exp.config import ConfigError, TrainConfig
from stylegan_exp.gpu_plan import (
    Machine,
    check_fits,
    dataset_shape,
    describe,
    element_bytes,
    make_plan,
    this_machine,
    trained_resolutions,
)
from stylegan_exp.memory_plan import GIB, ResolutionPlan, plan_table, split_plan
from stylegan_exp.network_cost import network_costs
from stylegan_exp.run import USER_ERRORS, training_config
from stylegan_exp.schedule import accumulation
from stylegan_exp.schemas import register_configs

CONF = Path(__file__).resolve().parents[1] / "conf"


def preset_plan(cfg: TrainConfig, machine: Machine) -> list[ResolutionPlan]:
    """A fixed preset's split (its num_gpus and accumulation) against the memory of one of `machine`'s
    devices."""
    resolution, channels = dataset_shape(cfg)
    resolutions = trained_resolutions(cfg, resolution)
    costs = network_costs(cfg.model, resolution, channels, resolutions, parse_aspect(cfg.dataset.aspect))
    g = cfg.gpus
    size = element_bytes(cfg.model.precision, g.num_gpus if g.gpu else 0)
    return [split_plan(r, g.minibatch_dict.get(r, g.minibatch_base), g.num_gpus, machine.memory_bytes,
                       costs[r], accumulation(r, cfg.schedule, g), element_bytes=size) for r in resolutions]


def plan_lines(cfg: TrainConfig) -> list[str]:
    """What `plan` prints: which devices, then the table; a ConfigError when a resolution does not fit."""
    machine = this_machine(cfg.gpus.memory_gb)
    lines = []
    if not machine.gpus:
        lines.append(f"TensorFlow sees no GPU: planning for the CPU ({machine.memory_bytes / GIB:.1f} GB of "
                     "memory)")
    if cfg.gpus.auto:
        plans = make_plan(cfg, machine)
        lines.append(f"gpus=auto: {describe(machine)}, {machine.strategy} strategy")
    else:
        plans = preset_plan(cfg, machine)
        lines.append(f"gpus={cfg.gpus.name}: {cfg.gpus.num_gpus} device(s), "
                     f"{machine.memory_bytes / GIB:.1f} GB each (gpus.memory_gb to plan for another size)")
    lines.append(plan_table(plans, machine.kind))
    try:
        check_fits(plans, machine, cfg.gpus.name)
    except ConfigError as exc:
        lines.append(f"error: {exc}")
    return lines


def main(overrides: Sequence[str]) -> int:
    register_configs()
    try:
        with initialize_config_dir(str(CONF), version_base="1.3"):
            composed = compose("train", overrides=list(overrides))
            cfg, _ = training_config(composed, compose("train"), overrides)
        lines = plan_lines(cfg)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 1 if lines[-1].startswith("error:") else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
