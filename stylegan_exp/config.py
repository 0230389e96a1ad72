"""Structured configs: the typed schema Hydra validates every composed run against.

The dataclass defaults are the defaults (the original StyleGAN values); the YAML files in `conf/` carry only
what a preset changes. A misspelled key or a wrongly typed value fails at composition time naming the key.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from stylegan_exp.aspect import aspect_tag
from stylegan_exp.atomic import write_atomic
from stylegan_exp.sweep import register_resolvers


class ConfigError(ValueError):
    """A composed config that is well-typed but cannot be run."""


@dataclass
class SyntheticConfig:
    """Parameters of the embedded procedurally drawn face dataset (generated when missing); `labels`
    stores those true attributes as label vectors (data/synthetic.py LABELS: hair_color, hair_style,
    bangs, mouth as categorical groups; smile, blush as tags)."""

    count: int = 4000
    resolution: int = 64
    seed: int = 0
    labels: list[str] = field(default_factory=list)


@dataclass
class DatasetConfig:
    name: str = MISSING
    path: str = MISSING
    resolution: int | None = None  # the short side (stylegan_exp/aspect.py)
    aspect: str = "1:1"  # width:height, one of aspect.SUPPORTED; the dataset's must match
    mirror: bool = False
    shuffle_buffer: int = 2000
    cache: bool = True
    synthetic: SyntheticConfig | None = None


class Strategy(StrEnum):
    default = "default"  # one device
    mirrored = "mirrored"  # all local GPUs (or `devices`)
    multiworker = "multiworker"  # several hosts: SLURM inside a Slurm job, else TF_CONFIG


@dataclass
class GpusConfig:
    """`minibatch_*` are global batches, split over `num_gpus` replicas; `devices` pins mirrored ones.

    Dict-valued knobs default to empty here and are set by the presets: OmegaConf merges a preset's dict
    into the default key by key, so a preset could never drop a key the default had."""

    name: str = MISSING
    gpu: bool = True  # a GPU preset: on a machine without GPUs it says so, then trains on the CPU
    num_gpus: int = 1
    strategy: Strategy = Strategy.default
    devices: list[str] = field(default_factory=list)
    minibatch_base: int = 4
    minibatch_dict: dict[int, int] = field(default_factory=dict)
    max_minibatch_per_gpu: dict[int, int] = field(default_factory=dict)
    # Micro-batches accumulated per replica at a resolution (default schedule.accumulate): gpus=auto's plan.
    accumulate_dict: dict[int, int] = field(default_factory=dict)
    # gpus=auto: devices, strategy and accumulate_dict are planned at start-up and recorded (auto then false).
    auto: bool = False
    memory_gb: float | None = None  # memory per device the plan fits in (default: what the device has)
    port_base: int = 8888  # multiworker under Slurm: a node's k-th task listens on port_base + k


@dataclass
class ScheduleConfig:
    """The original schedule: the scalars default to the paper's train.py values; the learning-rate dicts
    are set by `schedule/default.yaml` (dicts merge key by key, see GpusConfig)."""

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
    tick_kimg_dict: dict[int, float] = field(default_factory=dict)  # schedule/default.yaml: the original's
    G_smoothing_kimg: float = 10.0
    G_smoothing_rampup: float | None = None  # Gs half-life ≤ rampup × images shown (None: no ramp-up)
    D_repeats: int = 1
    minibatch_repeats: int = 4
    accumulate: int = 1  # micro-batches per step: same update as one step on the whole minibatch
    reset_opt_for_new_lod: bool = True
    image_snapshot_ticks: int = 1
    network_snapshot_ticks: int = 10
    max_minutes: float | None = None


class ResumeMode(StrEnum):
    none = "none"
    latest = "latest"
    path = "path"


class WandbMode(StrEnum):
    offline = "offline"
    online = "online"
    disabled = "disabled"


@dataclass
class ResumeConfig:
    """`mode`: none, latest (newest checkpoint of `experiment`, default the current one) or path."""

    mode: ResumeMode = ResumeMode.none
    path: str | None = None
    experiment: str | None = None


@dataclass
class TransferConfig:
    """Start from other weights (a network snapshot) at `resume_kimg` of the schedule."""

    name: str = MISSING
    source: str | None = None
    resume_kimg: float = 0.0
    freeze_d: int = 0  # Freeze-D: D's k highest-resolution blocks keep the source's weights


class AugmentKind(StrEnum):
    none = "none"
    diffaugment = "diffaugment"  # DiffAugment (Zhao et al. 2020): every op on every image D sees
    ada = "ada"  # adaptive discriminator augmentation (Karras et al. 2020): p tuned from D's outputs
    fixed = "fixed"  # the ADA pipeline at a fixed p


class DiffAugmentOp(StrEnum):
    color = "color"  # brightness, saturation, contrast
    translation = "translation"
    cutout = "cutout"


class ADATransform(StrEnum):
    """The ADA pipeline's transforms, applied in this order (geometric, then colour)."""

    xflip = "xflip"
    rotate90 = "rotate90"
    xint = "xint"
    scale = "scale"
    rotate = "rotate"
    aniso = "aniso"
    xfrac = "xfrac"
    brightness = "brightness"
    contrast = "contrast"
    lumaflip = "lumaflip"
    hue = "hue"
    saturation = "saturation"


@dataclass
class ADAStrengths:
    """Ranges of the ADA transforms (stylegan2-ada's `augment_pipeline` defaults): shifts relative to the
    image size, angles in full circles, the `*_std` of scale factors in log2 units."""

    xint_max: float = 0.125
    scale_std: float = 0.2
    rotate_max: float = 1.0
    aniso_std: float = 0.2
    xfrac_std: float = 0.125
    brightness_std: float = 0.2
    contrast_std: float = 0.5
    hue_max: float = 1.0
    saturation_std: float = 1.0


@dataclass
class AugmentConfig:
    """Discriminator augmentation: what D sees (reals and fakes alike), never what G outputs.

    `policy`/`translation`/`cutout` are DiffAugment's; the rest is ADA's. `pipeline` defaults to 'bgc' (all
    twelve transforms). ADA starts at `p` and moves it by sign(r_t - `target`) · images / (`ada_kimg` · 1000)
    every `interval` D steps, r_t = E[sign(D(augmented real))]; `fixed` keeps `p`."""

    name: str = MISSING
    kind: AugmentKind = AugmentKind.none
    policy: list[DiffAugmentOp] = field(default_factory=lambda: list(DiffAugmentOp))
    translation: float = 0.125  # DiffAugment: largest shift, relative to the image size
    cutout: float = 0.5  # DiffAugment: side of the cut-out square, relative to the image size
    pipeline: list[ADATransform] = field(default_factory=lambda: list(ADATransform))
    strengths: ADAStrengths = field(default_factory=ADAStrengths)
    p: float = 0.0
    target: float = 0.6
    interval: int = 4
    ada_kimg: float = 500.0


class Precision(StrEnum):
    """Compute dtype of the synthesis network and D; weights, mapping and losses stay float32."""

    float32 = "float32"
    mixed_float16 = "mixed_float16"  # with dynamic loss scaling
    mixed_bfloat16 = "mixed_bfloat16"
    auto = "auto"  # mixed_bfloat16 on CPUs with bfloat16 hardware, else float32 (train/precision.py)


# Field metadata key: a model field that says how a run trains, not what the networks compute.
RUN_OWNED = "run_owned"


def run_owned(default: Any) -> Any:
    """A model field a run keeps as its own when it continues a snapshot (transfer, resume from a
    snapshot): every other field is the snapshot's, since it changes what the networks compute."""
    return field(default=default, metadata={RUN_OWNED: True})


@dataclass
class ModelConfig:
    """What every generator/discriminator pair shares: the mapping network, truncation, mbstd, R1, precision.

    Each architecture subclasses it in its package (`stylegan_exp/models/<arch>/config.py`), names itself in
    `ARCH` (the key snapshots record) and registers in `stylegan_exp.models`; `model=<preset>` picks one
    through its YAML file's schema (`<arch>_schema`)."""

    ARCH: ClassVar[str] = ""
    PROGRESSIVE: ClassVar[bool] = False  # grown from low resolution by the schedule's lod keys

    name: str = field(default=MISSING, metadata={RUN_OWNED: True})
    fmap_base: int = 8192
    fmap_decay: float = 1.0
    fmap_max: int = 512
    latent_size: int = 512
    dlatent_size: int = 512
    mapping_layers: int = 8
    mapping_fmaps: int = 512
    mapping_lrmul: float = 0.01
    use_noise: bool = True
    style_mixing_prob: float = run_owned(0.9)
    dlatent_avg_beta: float = run_owned(0.995)
    truncation_psi: float = run_owned(0.7)
    truncation_cutoff: int | None = run_owned(8)
    mbstd_group_size: int = 4
    mbstd_num_features: int = 1
    r1_gamma: float = run_owned(10.0)
    precision: Precision = run_owned(Precision.float32)
    jit_compile: bool = run_owned(False)  # XLA for the per-replica forward/backward pass
    # A label-conditional model (stylegan2-ada's c): the label size is the dataset's LabelSpace's, read when
    # the networks are built; the run's choice (a transfer from an unconditional snapshot may turn it on).
    conditional: bool = run_owned(False)
    # D's label mapping (stylegan2-ada's cmap: embedding, then these dense layers): None = as G's mapping
    # (`mapping_layers`, `mapping_lrmul`); an imported pickle sets its own (TF D_main: 0, PyTorch: 8).
    label_mapping_layers: int | None = None
    label_mapping_lrmul: float | None = None

    def nf(self, stage: int) -> int:
        """Feature maps of a network stage (stage s works at 2**(s+1) pixels), as the original's `nf`."""
        return min(int(self.fmap_base / (2.0 ** (stage * self.fmap_decay))), self.fmap_max)

    def run_owned_fields(self) -> frozenset[str]:
        """The fields a continuing run keeps as its own (marked with `run_owned`)."""
        return frozenset(f.name for f in dataclasses.fields(self) if f.metadata.get(RUN_OWNED))


@dataclass
class SWDConfig:
    """Sliced Wasserstein distance settings; the defaults are the ProGAN paper's."""

    nhood_size: int = 7
    nhoods_per_image: int = 128
    dir_repeats: int = 4
    dirs_per_repeat: int = 128
    min_resolution: int = 16


class InceptionNetwork(StrEnum):
    standard = "standard"  # the 2015-12-05 Inception graph of TTUR and the StyleGAN papers (pool_3)
    keras = "keras"  # keras' InceptionV3 ImageNet weights (not comparable with published numbers)


class LatentSpace(StrEnum):
    w = "w"
    z = "z"


class PathSampling(StrEnum):
    end = "end"  # pairs at the ends of the interpolation (t = 0)
    full = "full"  # pairs anywhere on it (t ~ U[0, 1))


@dataclass
class NetworkFile:
    """A network file downloaded once into `<metrics.cache_dir>/networks/`.

    `checksum` is "<hashlib algorithm>:<hex digest>": a download that does not match is refused. None
    trusts the first download and logs its sha256 so that it can be pinned here.
    """

    url: str = MISSING
    checksum: str | None = None


@dataclass
class FIDConfig:
    """The Inception features of FID and KID. Inception runs at 299×299: its own batch size."""

    network: InceptionNetwork = InceptionNetwork.standard
    batch_size: int = 25
    standard: NetworkFile = field(default_factory=lambda: NetworkFile(
        "http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz"))
    keras: NetworkFile = field(default_factory=lambda: NetworkFile(
        "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5", "md5:bcbd6486424b2319ff4ef7d526e38f63"))


@dataclass
class KIDConfig:
    """Kernel inception distance (Bińkowski et al. 2018): unbiased MMD² over random subsets."""

    num_subsets: int = 100
    max_subset_size: int = 1000


@dataclass
class PRConfig:
    """Improved precision and recall (Kynkäänniemi et al. 2019) on VGG16 fc2 features."""

    k: int = 3
    batch_size: int = 25  # images per VGG16 call (224×224)
    row_batch_size: int = 2000  # feature rows per pairwise-distance block (rows × num_images floats)
    weights: NetworkFile = field(default_factory=lambda: NetworkFile(
        "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
        "vgg16_weights_tf_dim_ordering_tf_kernels.h5", "md5:64373286793e3c8b2b4e3219cbf3544b"))


@dataclass
class PPLConfig:
    """Perceptual path length (StyleGAN paper): LPIPS-style VGG16 distance of ε-steps, × 1/ε²."""

    num_samples: int = 100000
    epsilon: float = 1e-4
    space: LatentSpace = LatentSpace.w
    sampling: PathSampling = PathSampling.end
    crop: bool = True  # the central face region, as StyleGAN's ppl_* (StyleGAN2's ppl2 does not crop)
    minibatch: int = 16  # pairs per generator call
    weights: NetworkFile = field(default_factory=lambda: NetworkFile(
        "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", "md5:6d6bbae143d832006294945121d1f1fc"))


@dataclass
class BalanceConfig:
    """G/D balance watch: warn when D's loss stays below `d_loss_min` or G's above `g_loss_max`."""

    enabled: bool = True
    d_loss_min: float = 0.05
    g_loss_max: float = 8.0
    patience_ticks: int = 3


@dataclass
class MetricsConfig:
    """`kinds` (fid, kid, pr, ppl, swd) are computed on `num_images` reals and fakes every
    `interval_ticks` ticks (ppl on `ppl.num_samples` pairs). `per_tag` adds, for a conditional generator,
    FID per tag of the dataset's vocabulary that at least `per_tag_min_images` images have.

    `cache_dir` holds the real-image features, one folder per dataset, and the downloaded networks.
    """

    name: str = MISSING
    kinds: list[str] = field(default_factory=list)
    interval_ticks: int = 10
    num_images: int = 8192
    minibatch: int = 32
    seed: int = 0
    cache_dir: str = "~/.cache/stylegan_exp/metrics"
    swd: SWDConfig = field(default_factory=SWDConfig)
    fid: FIDConfig = field(default_factory=FIDConfig)
    kid: KIDConfig = field(default_factory=KIDConfig)
    pr: PRConfig = field(default_factory=PRConfig)
    ppl: PPLConfig = field(default_factory=PPLConfig)
    per_tag: bool = False
    per_tag_min_images: int = 1000


@dataclass
class LoggerConfig:
    """wandb `mode` is offline, online or disabled; metrics.jsonl is written in every mode."""

    name: str = MISSING
    mode: WandbMode = WandbMode.offline
    project: str = "stylegan-exp"
    entity: str | None = None
    group: str | None = None
    tags: list[str] = field(default_factory=list)
    log_snapshots: bool = False


@dataclass
class RunConfig:
    """How a training run survives and is watched: checkpoint intervals, restarts after exceptions, rollback
    on NaN/Inf, the G/D balance watch."""

    checkpoint_kimg: float = 50.0
    checkpoint_minutes: float = 15.0
    keep_checkpoints: int = 3
    max_restarts: int = 0
    rollback_lr_factor: float = 0.5
    max_rollbacks: int = 3
    balance: BalanceConfig = field(default_factory=BalanceConfig)


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
    augment: AugmentConfig = MISSING
    model: ModelConfig = MISSING  # an architecture's subclass, chosen by the `model` group option's schema
    metrics: MetricsConfig = MISSING
    logger: LoggerConfig = MISSING
    run: RunConfig = field(default_factory=RunConfig)
    grid: GridConfig = field(default_factory=GridConfig)
    outputs_root: str = "outputs"
    dry_run: bool = False
    """Print the memory plan (as `python -m stylegan_exp.plan`) and exit without training."""


class FigureKind(StrEnum):
    uncurated = "uncurated"
    style_mixing = "style_mixing"
    truncation = "truncation"
    noise = "noise"
    labels = "labels"  # a conditional snapshot's rows per value of a tag group (task.label_group)


class VideoKind(StrEnum):
    interpolation = "interpolation"
    mixing_coarse = "mixing_coarse"
    mixing_fine = "mixing_fine"
    progress = "progress"
    tags = "tags"  # a conditional snapshot's seeds morphing from one tag set to the next (task.tag_sets)


@dataclass
class TaskConfig:
    """What every sampling task has: its name (the `task` group option)."""

    name: str = MISSING


@dataclass
class RandomTask(TaskConfig):
    """One image per seed: `example-{seed}.{image_format}`."""

    name: str = "random"


@dataclass
class FiguresTask(TaskConfig):
    """The paper's figures; `kinds` picks which. Layer ranges (`mixing_ranges`) scale with the model depth."""

    name: str = "figures"
    kinds: list[FigureKind] = field(default_factory=lambda: [k for k in FigureKind if k != FigureKind.labels])
    cell_size: int | None = None
    label_group: str | None = None  # the labels figure's rows: this group's values (default: the first group)
    uncurated_seeds: list[int] = field(default_factory=lambda: list(range(24)))
    uncurated_width: int = 6
    mixing_sources: list[int] = field(default_factory=lambda: [639, 701, 687, 615, 2268])
    mixing_destinations: list[int] = field(default_factory=lambda: [888, 829, 1898, 1733, 1614, 845])
    mixing_ranges: list[str] = field(default_factory=lambda: ["coarse", "middle", "fine"])
    truncation_seeds: list[int] = field(default_factory=lambda: [91, 388, 1, 2])
    truncation_psis: list[float] = field(default_factory=lambda: [1, 0.7, 0.5, 0.25, 0, -0.25, -0.5, -1])
    noise_seeds: list[int] = field(default_factory=lambda: [1157, 1012, 3])
    noise_variants: int = 3
    noise_std_samples: int = 32


@dataclass
class VideoTask(TaskConfig):
    """mp4 clips; `progress_run` is a training run dir (default: the snapshot's own)."""

    name: str = "video"
    kinds: list[VideoKind] = field(default_factory=lambda: [k for k in VideoKind if k != VideoKind.tags])
    seed: int = 0
    tag_sets: list[list[str]] = field(default_factory=list)  # the tags clip's stops: [[red_hair],[smile]]
    duration_sec: float = 5.0
    fps: int = 30
    smoothing_sec: float = 1.0
    grid_width: int = 4
    grid_height: int = 3
    mixing_destinations: list[int] = field(default_factory=lambda: [888, 829, 1898, 1733])
    cell_size: int | None = None
    progress_run: str | None = None
    progress_fps: int = 8
    progress_max_width: int = 512


@dataclass
class InversionConfig:
    """Encoder (image → w) trained on the generator's own (w, G(w)) pairs, then per-image optimisation."""

    encoder: str | None = None
    encoder_steps: int = 1000
    encoder_lr: float = 0.001
    encoder_batch: int = 16
    encoder_psi: float | None = None  # None: the run's truncation_psi (the snapshot's unless set)
    steps: int = 200
    lr: float = 0.05
    optimize_noise: bool = True
    d_feature_weight: float = 0.0
    noise_reg_weight: float = 1e5  # StyleGAN2 generators: the projector's noise autocorrelation penalty


@dataclass
class InvertTask(TaskConfig):
    """`images`: an image file or a folder of them."""

    name: str = "invert"
    images: str = MISSING
    inversion: InversionConfig = field(default_factory=InversionConfig)


class EditMethod(StrEnum):
    probe = "probe"  # a linear probe on D's features of the labelled reals scores generated images
    invert = "invert"  # mean w of inverted reals with the tag − without


@dataclass
class EditTask(TaskConfig):
    """Direction = mean w(`group_b`) − mean w(`group_a`) (folders of images, or invert run dirs), or, with
    `tag`, a direction for that tag learnt from the labelled packed `dataset` by `method`."""

    name: str = "edit"
    group_a: str | None = None
    group_b: str | None = None
    tag: str | None = None
    dataset: str | None = None
    method: EditMethod = EditMethod.probe
    real_images: int = 2000  # labelled reals read from `dataset` (a seeded shuffle)
    min_images: int = 10  # reals needed with and without the tag
    held_out: float = 0.2  # share of the reals kept from the probe to measure its accuracy
    probe_l2: float = 0.01
    probe_samples: int = 1000  # generated images (seeds 0 …) the probe scores
    probe_fraction: float = 0.2  # direction = mean w of the top-scored share − the bottom-scored share
    invert_images: int = 16  # method=invert: reals inverted on each side
    seeds: list[int] = field(default_factory=lambda: list(range(4)))
    strengths: list[float] = field(default_factory=lambda: [-1.0, -0.5, 0.0, 0.5, 1.0])
    inversion: InversionConfig = field(default_factory=InversionConfig)


@dataclass
class RankTask(TaskConfig):
    """Score `folder`'s images with the snapshot's D; `reject_percent` > 0 moves the lowest to `rejected/`."""

    name: str = "rank"
    folder: str = MISSING
    reject_percent: float = 0.0
    sheet_count: int = 16
    batch_size: int = 32


@dataclass
class MetricsTask(TaskConfig):
    """Metrics of a snapshot against a packed dataset (at the snapshot's resolution), into metrics.json."""

    name: str = "metrics"
    dataset: str = MISSING
    metrics: MetricsConfig = field(default_factory=lambda: MetricsConfig(name="swd", kinds=["swd"]))


class ExportFormat(StrEnum):
    saved_model = "saved_model"
    tflite = "tflite"
    onnx = "onnx"


class TFLiteWeights(StrEnum):
    float32 = "float32"
    float16 = "float16"  # weights stored as float16, computed in float32


@dataclass
class ExportTask(TaskConfig):
    """Gs as files that generate without this package (`formats`), described in export.json and checked
    against Gs on `verify_seeds` (empty: no check). ONNX needs opset ≥ 18 (the seed signature's bit ops)."""

    name: str = "export"
    formats: list[ExportFormat] = field(default_factory=lambda: [ExportFormat.saved_model,
                                                                 ExportFormat.tflite])
    tflite_weights: list[TFLiteWeights] = field(default_factory=lambda: list(TFLiteWeights))
    onnx_opset: int = 18
    verify_seeds: list[int] = field(default_factory=lambda: list(range(4)))


@dataclass
class ExploreTask(TaskConfig):
    """A local web page to explore the snapshot (needs the `explore` extra): faces by seed, ψ and cutoff,
    style mixing (`mixing_rows` × `mixing_columns`), an interpolation strip; `port` 0 picks a free one.
    `max_images` bounds what one request may ask the generator for."""

    name: str = "explore"
    host: str = "127.0.0.1"
    port: int = 8000
    seed: int = 0
    mixing_rows: list[int] = field(default_factory=lambda: [639, 701, 687])
    mixing_columns: list[int] = field(default_factory=lambda: [888, 829, 1898, 1733])
    mixing_range: str = "coarse"
    interpolation_seeds: list[int] = field(default_factory=lambda: [0, 1])
    interpolation_steps: int = 7
    max_images: int = 64


TASKS: dict[str, type] = {"random": RandomTask, "figures": FiguresTask, "video": VideoTask,
                          "rank": RankTask, "invert": InvertTask, "edit": EditTask, "metrics": MetricsTask,
                          "export": ExportTask, "explore": ExploreTask}


@dataclass
class SampleConfig:
    """`snapshot`: a network snapshot path, or `latest` for the newest one of experiment `name`.

    `seed_range` [start, stop) replaces `seeds` when set. `task` is one of the TASKS dataclasses.
    `truncation_psi` and `truncation_cutoff` left unset (MISSING, `???`) are the snapshot's own (its model
    config's: StyleGAN 0.7 below layer 8, StyleGAN2 0.5 on every layer), filled in when the snapshot is
    opened (`sample.truncation.adopt_truncation`); a cutoff of None truncates every layer.
    """

    name: str = "default"
    snapshot: str = "latest"
    seeds: list[int] = field(default_factory=lambda: list(range(8)))
    seed_range: list[int] | None = None
    truncation_psi: float = MISSING
    truncation_cutoff: int | None = MISSING
    randomize_noise: bool = False
    batch_size: int = 16
    image_format: str = "png"
    outputs_root: str = "outputs"
    full_network: bool = False  # sample a snapshot saved while growing with every layer, not as trained
    tags: list[str] = field(default_factory=list)  # a conditional snapshot's labels to sample, e.g. [smile]
    task: TaskConfig = MISSING  # one of the TASKS dataclasses, chosen by the `task` group option


def register_schemas(models: Iterable[type[ModelConfig]]) -> None:
    """Make the schemas available to Hydra (`train_schema`, `sample_schema`, `<arch>_schema` for each model
    config and `<task>_schema` in the defaults lists), and the resolvers the configs use."""
    register_resolvers()
    if not OmegaConf.has_resolver("aspect_tag"):
        OmegaConf.register_new_resolver("aspect_tag", aspect_tag)
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="sample_schema", node=SampleConfig)
    for node in models:
        cs.store(group="model", name=f"{node.ARCH}_schema", node=node)
    for name, node in TASKS.items():
        cs.store(group="task", name=f"{name}_schema", node=node)


def write_config(run_dir: str | Path, cfg: Any) -> Path:
    """The one writer of a run's resolved `config.yaml` (a composed DictConfig or a typed config), atomic."""
    node = cfg if isinstance(cfg, DictConfig) else OmegaConf.structured(cfg)
    path = Path(run_dir) / "config.yaml"
    write_atomic(path, OmegaConf.to_yaml(node, resolve=True).encode())
    return path


def typed_model(schema: type[ModelConfig], values: dict[str, Any]) -> ModelConfig:
    """A model config from plain values (a snapshot's record, a pickle's kwargs), typed and checked like a
    composed one."""
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), values))


def unknown_keys(cfg: DictConfig, prefix: str = "") -> list[str]:
    """Every key of a composed config that its schema does not have, each with the nearest known key.

    Hydra lets `+key=value` add a key to a structured config (and suggests it for a typo); such a key would
    be stored in config.yaml and ignored by the run, so it must be refused."""
    found = []
    schema = OmegaConf.get_type(cfg)
    known = {f.name for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else None
    for key in cfg:
        path = f"{prefix}{key}"
        if known is not None and key not in known:
            near = difflib.get_close_matches(str(key), sorted(known), n=1)
            found.append(f"{path}" + (f" (did you mean {prefix}{near[0]}?)" if near else ""))
            continue
        node = cfg._get_node(key)
        if isinstance(node, DictConfig) and not node._is_none() and not node._is_missing():
            found.extend(unknown_keys(node, f"{path}."))
    return found


def to_object(cfg: Any) -> Any:
    """The composed DictConfig as its dataclass, so the package works with typed attributes; a key the
    schema does not have or a mandatory value left unset is a ConfigError naming the key."""
    if isinstance(cfg, DictConfig):
        unknown = unknown_keys(cfg)
        if unknown:
            raise ConfigError(f"unknown config key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
    try:
        return OmegaConf.to_object(cfg)
    except MissingMandatoryValue as exc:
        key = exc.full_key or exc.key
        raise ConfigError(f"{key} is not set: add {key}=… to the command line") from None
