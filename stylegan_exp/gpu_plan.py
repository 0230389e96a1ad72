"""`gpus=auto`: the devices this machine has, the strategy for them, and each resolution's per-device batch
and accumulation that keep the schedule's global minibatch within a device's memory. The decided values
replace `auto` in the run's config, so config.yaml says exactly what the run does (a resumed run keeps
them)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from stylegan_exp.aspect import parse_aspect
from stylegan_exp.config import ConfigError, Precision, Strategy, TrainConfig
from stylegan_exp.data.reader import load_info
from stylegan_exp.devices import gpu_memory_bytes, gpu_name, host_memory_bytes, visible_gpus
from stylegan_exp.memory_plan import GIB, ResolutionPlan, plan_resolution, plan_table, split_plan
from stylegan_exp.network_cost import network_costs
from stylegan_exp.schedule import accumulation
from stylegan_exp.steps.precision import cpu_has_bf16

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Machine:
    """What the plan is for: `workers` processes (hosts) with `gpus` devices each (0: the CPU) of
    `memory_bytes` each, called `name`."""

    gpus: int
    memory_bytes: int
    name: str
    workers: int = 1

    @property
    def devices(self) -> int:
        """Replicas in all: every worker's GPUs, or its CPU."""
        return max(self.gpus, 1) * self.workers

    @property
    def strategy(self) -> Strategy:
        if self.workers > 1:
            return Strategy.multiworker
        return Strategy.mirrored if self.gpus > 1 else Strategy.default

    @property
    def kind(self) -> str:
        return "GPU" if self.gpus else "CPU"


def cluster_workers(env: Mapping[str, str]) -> int:
    """The workers of the job this process is one of: a Slurm job step's tasks, else TF_CONFIG's cluster
    (the places train.py's multiworker strategy reads), else 1. Every worker is assumed to be alike."""
    if "SLURM_STEP_NUM_TASKS" in env:
        try:
            return int(env["SLURM_STEP_NUM_TASKS"])
        except ValueError:
            tasks = env["SLURM_STEP_NUM_TASKS"]
            raise ConfigError(f"SLURM_STEP_NUM_TASKS={tasks!r} is not a number") from None
    if env.get("TF_CONFIG"):
        try:
            cluster = json.loads(env["TF_CONFIG"])["cluster"]
            return len(cluster.get("chief", [])) + len(cluster.get("worker", []))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"cannot read TF_CONFIG's cluster: {exc!r}") from None
    return 1


def this_machine(memory_gb: float | None, env: Mapping[str, str] = os.environ) -> Machine:
    """The visible GPUs (or the CPU), their memory and the job's workers; `memory_gb` (gpus.memory_gb)
    overrides the reading."""
    gpus, workers = visible_gpus(), cluster_workers(env)
    override = None if memory_gb is None else int(memory_gb * GIB)
    if not gpus:
        return Machine(0, override or host_memory_bytes(), "CPU", workers)
    memory = override or gpu_memory_bytes(0)
    if memory is None:
        raise ConfigError(f"gpus=auto: cannot read the memory of {gpu_name(gpus[0])} (nvidia-smi): set "
                          "gpus.memory_gb to what one GPU has, e.g. gpus.memory_gb=12")
    return Machine(len(gpus), memory, gpu_name(gpus[0]), workers)


def dataset_shape(cfg: TrainConfig) -> tuple[int, int]:
    """The resolution the run trains at and the images' channels, before the dataset is made."""
    ds = cfg.dataset
    if (Path(ds.path) / "dataset.json").is_file() or ds.synthetic is None:
        info = load_info(ds.path)
        return ds.resolution or info.resolution, info.channels
    return ds.resolution or ds.synthetic.resolution, 3


def trained_resolutions(cfg: TrainConfig, resolution: int) -> list[int]:
    """Every resolution the schedule trains at: from the first grown level up, or only the full one."""
    if not type(cfg.model).PROGRESSIVE:
        return [resolution]
    first = min(cfg.schedule.lod_initial_resolution, resolution)
    return [2**k for k in range(first.bit_length() - 1, resolution.bit_length())]


def element_bytes(precision: Precision, gpus: int) -> int:
    """Bytes per activation element: 2 in mixed precision (`auto` is mixed bfloat16 on CPUs with it)."""
    if precision == Precision.auto:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
        return 2 if not gpus and cpu_has_bf16(cpuinfo) else 4
    return 2 if precision in (Precision.mixed_float16, Precision.mixed_bfloat16) else 4


def make_plan(cfg: TrainConfig, machine: Machine) -> list[ResolutionPlan]:
    """Each trained resolution's split of gpus.minibatch_dict's global minibatch over the machine's
    devices."""
    resolution, channels = dataset_shape(cfg)
    resolutions = trained_resolutions(cfg, resolution)
    costs = network_costs(cfg.model, resolution, channels, resolutions, parse_aspect(cfg.dataset.aspect))
    g, size = cfg.gpus, element_bytes(Precision(cfg.model.precision), machine.gpus)
    return [plan_resolution(r, g.minibatch_dict.get(r, g.minibatch_base), machine.devices,
                            machine.memory_bytes, costs[r], element_bytes=size,
                            min_accumulate=cfg.schedule.accumulate, group_size=cfg.model.mbstd_group_size)
            for r in resolutions]


def describe(machine: Machine) -> str:
    """"2 workers × 8 × NVIDIA A100, 40.0 GB each"."""
    workers = f"{machine.workers} workers × " if machine.workers > 1 else ""
    return (f"{workers}{max(machine.gpus, 1)} × {machine.name}, {machine.memory_bytes / GIB:.1f} GB "
            "each")


def check_fits(plans: list[ResolutionPlan], machine: Machine, preset: str = "auto") -> None:
    """A resolution whose smallest micro-batch does not fit is one line naming the knobs."""
    for p in plans:
        if not p.fits:
            raise ConfigError(
                f"gpus={preset}: at {p.resolution}² even micro-batches of {p.micro_batch} need an estimated "
                f"{p.peak_bytes / GIB:.1f} GB, more than the {p.budget_bytes / GIB:.1f} GB usable of "
                f"{machine.memory_bytes / GIB:.1f} GB per {machine.kind}: lower "
                f"gpus.minibatch_dict[{p.resolution}], set model.precision=mixed_float16, or set "
                "gpus.memory_gb if the device has more")


def resolve_gpus(cfg: TrainConfig) -> TrainConfig:
    """`cfg` with gpus=auto decided for this machine (unchanged when gpus.auto is false)."""
    if not cfg.gpus.auto:
        return cfg
    machine = this_machine(cfg.gpus.memory_gb)
    if not machine.gpus:
        log.info("gpus=auto: TensorFlow sees no GPU: planning for the CPU (%.1f GB of memory)",
                 machine.memory_bytes / GIB)
    plans = make_plan(cfg, machine)
    check_fits(plans, machine)
    log.info("gpus=auto: %s, %s strategy\n%s", describe(machine), machine.strategy,
             plan_table(plans, machine.kind))
    gpus = dataclasses.replace(
        cfg.gpus, auto=False, gpu=machine.gpus > 0, num_gpus=machine.devices, strategy=machine.strategy,
        minibatch_dict={**cfg.gpus.minibatch_dict, **{p.resolution: p.minibatch for p in plans}},
        accumulate_dict={**cfg.gpus.accumulate_dict, **{p.resolution: p.accumulate for p in plans}},
        memory_gb=round(machine.memory_bytes / GIB, 2))
    return dataclasses.replace(cfg, gpus=gpus)


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
