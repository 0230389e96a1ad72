"""Structured configs: the typed schema Hydra validates every composed run against.

Defaults for real runs live in `conf/`; the dataclass defaults here only make the schema complete.
A misspelled key or a wrongly typed value fails at composition time with a message naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class SyntheticConfig:
    """Parameters of the embedded procedurally drawn face dataset (generated when missing)."""

    count: int = 4000
    resolution: int = 64
    seed: int = 0


@dataclass
class DatasetConfig:
    name: str = MISSING
    path: str = MISSING
    resolution: int | None = None
    mirror: bool = False
    shuffle_buffer: int = 2000
    cache: bool = True
    synthetic: SyntheticConfig | None = None


@dataclass
class GpusConfig:
    name: str = MISSING
    num_gpus: int = 1
    strategy: str = "default"
    minibatch_base: int = 4
    minibatch_dict: dict[int, int] = field(default_factory=dict)
    max_minibatch_per_gpu: dict[int, int] = field(default_factory=dict)


@dataclass
class ScheduleConfig:
    name: str = MISSING
    total_kimg: float = 25000.0
    lod_initial_resolution: int = 8
    lod_training_kimg: float = 600.0
    lod_transition_kimg: float = 600.0
    G_lrate_base: float = 0.001
    D_lrate_base: float = 0.001
    G_lrate_dict: dict[int, float] = field(default_factory=dict)
    D_lrate_dict: dict[int, float] = field(default_factory=dict)
    lrate_rampup_kimg: float = 0.0
    tick_kimg_base: float = 160.0
    tick_kimg_dict: dict[int, float] | None = None
    G_smoothing_kimg: float = 10.0
    D_repeats: int = 1
    minibatch_repeats: int = 4
    reset_opt_for_new_lod: bool = True
    image_snapshot_ticks: int = 1
    network_snapshot_ticks: int = 10
    max_minutes: float | None = None


@dataclass
class ResumeConfig:
    """`mode`: none, latest (newest checkpoint of `experiment`, default the current one) or path."""

    mode: str = "none"
    path: str | None = None
    experiment: str | None = None


@dataclass
class TransferConfig:
    """Start from other weights (a network snapshot) at `resume_kimg` of the schedule."""

    name: str = "none"
    source: str | None = None
    resume_kimg: float = 0.0


@dataclass
class ModelConfig:
    name: str = MISSING
    fmap_base: int = 8192
    fmap_decay: float = 1.0
    fmap_max: int = 512
    latent_size: int = 512
    dlatent_size: int = 512
    mapping_layers: int = 8
    mapping_fmaps: int = 512
    mapping_lrmul: float = 0.01
    use_noise: bool = True
    fused_scale_min_res: int = 128
    style_mixing_prob: float = 0.9
    dlatent_avg_beta: float = 0.995
    truncation_psi: float = 0.7
    truncation_cutoff: int = 8
    mbstd_group_size: int = 4
    mbstd_num_features: int = 1
    r1_gamma: float = 10.0


@dataclass
class MetricsConfig:
    name: str = "none"
    names: list[str] = field(default_factory=list)


@dataclass
class LoggerConfig:
    """wandb `mode` is offline, online or disabled; metrics.jsonl is written in every mode."""

    name: str = "wandb_offline"
    mode: str = "offline"
    project: str = "stylegan-exp"
    entity: str | None = None
    group: str | None = None
    tags: list[str] = field(default_factory=list)


@dataclass
class GridConfig:
    """The fakes grid drawn from fixed latents at every image snapshot."""

    width: int = 8
    height: int = 8
    seed: int = 123


@dataclass
class TrainConfig:
    """`name` is the experiment name: runs land in `outputs/<name>/<time>/`."""

    name: str = "default"
    seed: int = 1000
    dataset: DatasetConfig = MISSING
    gpus: GpusConfig = MISSING
    schedule: ScheduleConfig = MISSING
    resume: ResumeConfig = MISSING
    transfer: TransferConfig = MISSING
    model: ModelConfig = MISSING
    metrics: MetricsConfig = MISSING
    logger: LoggerConfig = MISSING
    grid: GridConfig = field(default_factory=GridConfig)
    outputs_root: str = "outputs"


@dataclass
class SampleConfig:
    """`snapshot`: a network snapshot path, or `latest` for the newest one of experiment `name`."""

    name: str = "default"
    snapshot: str = "latest"
    seeds: list[int] = field(default_factory=lambda: list(range(8)))
    truncation_psi: float = 0.7
    truncation_cutoff: int | None = 8
    randomize_noise: bool = False
    batch_size: int = 16
    image_format: str = "png"
    outputs_root: str = "outputs"


def register_configs() -> None:
    """Make the schemas available to Hydra (`train_schema`, `sample_schema` in the defaults lists)."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="sample_schema", node=SampleConfig)


def to_object(cfg: Any) -> Any:
    """The composed DictConfig as its dataclass, so the package works with typed attributes."""
    from omegaconf import OmegaConf

    return OmegaConf.to_object(cfg)
