"""Hydra multirun sweeps you can read: each job's folder (and so its wandb run name) carries the values that
distinguish it from the sweep's other jobs, and a launcher whose plugin is missing is one line naming its
extra."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

# hydra/launcher option → (the plugin's module, the pyproject extra that installs it)
LAUNCHER_EXTRAS = {"parallel": ("hydra_plugins.hydra_joblib_launcher", "joblib"),
                   "slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm")}
MAX_SUBDIR = 120  # characters of a job folder's name


def swept_keys(overrides: Sequence[str]) -> set[str]:
    """The keys a sweep varies (`model.r1_gamma=1,10`, `seed=range(3)`, …)."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return {o.key_or_group for o in parsed if o.is_sweep_override()}


def job_subdir(num: int, job_overrides: Sequence[str], swept: set[str]) -> str:
    """`<num>-<key=value,…>` of the job's swept keys (path separators made `_`), or `<num>` alone."""
    parsed = OverridesParser.create().parse_overrides(list(job_overrides))
    values = [text.lstrip("+~") for text, o in zip(job_overrides, parsed, strict=True)
              if o.key_or_group in swept]
    if not values:
        return str(num)
    return f"{num}-{','.join(values)}".replace("/", "_").replace("\\", "_")[:MAX_SUBDIR]


def _sweep_subdir() -> str:
    """Resolver of `hydra.sweep.subdir`, evaluated for each job once its sweep's multirun.yaml is written."""
    hc = HydraConfig.get()
    parent = OmegaConf.load(Path(hc.sweep.dir) / "multirun.yaml").hydra
    params = [f"{k}={v}" for k, v in (parent.sweeper.get("params") or {}).items()]
    swept = swept_keys([*params, *parent.overrides.task])
    return job_subdir(hc.job.num, list(hc.overrides.task), swept)


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("sweep_subdir"):
        OmegaConf.register_new_resolver("sweep_subdir", _sweep_subdir)


def missing_launcher(argv: Sequence[str]) -> str | None:
    """The one-line error for `hydra/launcher=<option>` whose plugin is not installed, else None."""
    for arg in argv:
        key, _, option = arg.partition("=")
        if key.lstrip("+") == "hydra/launcher" and option in LAUNCHER_EXTRAS:
            module, extra = LAUNCHER_EXTRAS[option]
            if importlib.util.find_spec(module) is None:
                return f'error: hydra/launcher={option} needs its plugin: pip install -e ".[{extra}]"'
    return None
