"""Building one training run from its config: the dataset, the networks and their steps, what the run
continues (a checkpoint, a snapshot, transfer weights), its checkpoint and its trackers. The loop
(`train.loop.Trainer`) then only trains."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from stylegan_exp.aspect import SQUARE, Aspect, parse_aspect
from stylegan_exp.config import ConfigError, TrainConfig, WandbMode
from stylegan_exp.data.dataset_format import DatasetError, LabelSpace
from stylegan_exp.data.reader import load_info, read_labels
from stylegan_exp.data.synthetic import ensure_synthetic_dataset
from stylegan_exp.data.vocabulary import same_vocabulary
from stylegan_exp.gpu_plan import resolve_gpus
from stylegan_exp.metrics.per_tag import check_per_tag
from stylegan_exp.models import (
    architecture,
    build_discriminator,
    build_generator,
    load_snapshot,
    model_config,
)
from stylegan_exp.nets.generator import Generator
from stylegan_exp.nets.network import Discriminator
from stylegan_exp.nets.weights import assign_shared_weights, assign_weights, shapes_by_path
from stylegan_exp.resolution import log2_int
from stylegan_exp.schedule import kimg_at_lod, training_schedule
from stylegan_exp.snapshot import Snapshot, shorten
from stylegan_exp.steps.base import TrainingSteps
from stylegan_exp.tracking import JsonlTracker, MultiTracker, Tracker, WandbTracker
from stylegan_exp.train.checkpoint import CheckpointError, TrainCheckpoint, TrainState
from stylegan_exp.train.conditional import (
    checkpoint_labels,
    grid_labels,
    run_labels,
    transfer_weights,
    write_run_labels,
)
from stylegan_exp.train.distribute import WorkerGroup, make_strategy, network_scope
from stylegan_exp.train.resume import earlier_outputs, resume_target
from stylegan_exp.train.transfer import adopt_architecture, implied_overrides

log = logging.getLogger(__name__)


@dataclass
class Dataset:
    path: Path
    resolution: int  # what the run trains at (≤ the stored resolution; the short side of a rectangle)
    channels: int
    aspect: Aspect = SQUARE
    labels: LabelSpace | None = None  # the dataset's label vocabulary (None: unlabelled)


@dataclass
class TrainingRun:
    """Everything the loop and its actions work on. `cfg` is the run's final config: the composed one with
    what a continued snapshot implies (its architecture, the kimg of its lod), as config.yaml records it."""

    cfg: TrainConfig
    run_dir: Path
    workers: WorkerGroup
    data: Dataset
    G: Generator
    D: Discriminator
    Gs: Generator
    steps: TrainingSteps
    grid_z: tf.Variable
    state: TrainState
    checkpoint: TrainCheckpoint
    tracker: Tracker
    source: Snapshot | None  # the network snapshot the run started from (transfer, resume from a snapshot)
    labels: LabelSpace | None = None  # what a conditional run's labels mean (None: unconditional)
    grid_c: np.ndarray | None = None  # the fakes grid's labels, one label per row (conditional runs)
    resumed: bool = False  # from a checkpoint: the run continues where it stopped
    earlier_outputs: list[str] = field(default_factory=list)  # names the run's earlier directories hold

    @property
    def is_chief(self) -> bool:
        return self.workers.is_chief


def connect(cfg: TrainConfig) -> WorkerGroup:
    """The strategy for `gpus` and this process's place among the workers; must precede any other TF op."""
    return WorkerGroup(make_strategy(cfg.gpus.strategy, cfg.gpus.devices, cfg.gpus.port_base))


def warn_without_gpus(cfg: TrainConfig) -> None:
    """A GPU preset on a machine without GPUs says so before training on the CPU."""
    if cfg.gpus.gpu and not tf.config.list_physical_devices("GPU"):
        log.warning("gpus=%s is a GPU preset but TensorFlow sees no GPU here: training on the CPU with that "
                    "preset's minibatches (gpus=cpu has CPU-sized ones)", cfg.gpus.name)


def check_replicas(cfg: TrainConfig, workers: WorkerGroup) -> None:
    """The schedule rounds minibatches for `gpus.num_gpus` replicas; the strategy must have a divisor."""
    replicas = workers.strategy.num_replicas_in_sync
    if replicas % workers.count:
        raise ConfigError(f"gpus.strategy={cfg.gpus.strategy}: {replicas} replicas do not split evenly over "
                          f"{workers.count} workers; give every worker the same number of GPUs")
    if cfg.gpus.num_gpus % replicas:
        raise ConfigError(
            f"gpus.num_gpus={cfg.gpus.num_gpus} is not a multiple of the {replicas} replicas the "
            f"{cfg.gpus.strategy} strategy found ({workers.count} worker(s)); set gpus.num_gpus={replicas}")
    if replicas < cfg.gpus.num_gpus:
        log.warning("gpus=%s is for %d GPUs but the %s strategy found %d replica(s): each replica trains "
                    "%d GPUs' share of every minibatch", cfg.gpus.name, cfg.gpus.num_gpus, cfg.gpus.strategy,
                    replicas, cfg.gpus.num_gpus // replicas)
    if workers.count > 1 and cfg.run.max_restarts:
        raise ConfigError(
            f"run.max_restarts={cfg.run.max_restarts} needs a single worker: one worker cannot re-enter "
            f"the loop while {workers.count - 1} other(s) wait in a collective; set run.max_restarts=0 and "
            "resubmit with resume=latest")


def resolve_dataset(cfg: TrainConfig, workers: WorkerGroup | None = None) -> Dataset:
    """Make sure the dataset exists (generating the synthetic one if needed).

    The chief draws a synthetic dataset first; the others then find it on a shared filesystem, or draw
    the same faces themselves on a local one.
    """
    path = Path(cfg.dataset.path)
    aspect = parse_aspect(cfg.dataset.aspect)
    if cfg.dataset.synthetic is not None:
        syn = cfg.dataset.synthetic
        chief = workers is None or workers.is_chief
        request = dict(count=syn.count, resolution=syn.resolution, seed=syn.seed, labels=list(syn.labels),
                       aspect=aspect)
        if chief:
            ensure_synthetic_dataset(path, **request)
        if workers is not None and workers.count > 1:
            workers.barrier()
            if not chief:
                ensure_synthetic_dataset(path, **request)
    info = load_info(path)
    if info.aspect != str(aspect):
        raise ConfigError(f"dataset.aspect={aspect} but {path} holds {info.aspect} images (width:height): "
                          f"set dataset.aspect={info.aspect}")
    resolution = cfg.dataset.resolution or info.resolution
    try:
        log2_int(resolution, "dataset.resolution")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if resolution > info.resolution:
        raise DatasetError(f"dataset.resolution={resolution} exceeds the stored {info.resolution} of {path}")
    return Dataset(path, resolution, info.channels, aspect, info.labels)


def _agreed_target(workers: WorkerGroup, target: Path | None) -> Path | None:
    """Every worker continues the chief's checkpoint; each found its own before connecting (no worker can
    have written a newer one by then), so a difference means another run is writing there."""
    if target is None or workers.count == 1:
        return target
    chief = Path(workers.from_chief(str(target)))
    if chief != target:
        raise ConfigError(f"worker {workers.index} found {target} to resume but the chief found {chief}: "
                          f"another run is writing to {target.parent}")
    return chief


def adopt_snapshot(cfg: TrainConfig, snap: Snapshot, data: Dataset, explicit: Collection[str],
                   resuming: bool) -> TrainConfig:
    """The run's config with the snapshot's architecture and, for a transfer from a snapshot saved while
    growing, a start where the schedule reaches the snapshot's lod (unless transfer.resume_kimg is set);
    every adopted value is logged."""
    if snap.aspect != str(data.aspect) and (resuming or snap.aspect != "1:1"):
        raise ConfigError(f"{snap.path} holds {snap.aspect} networks but dataset {cfg.dataset.name} "
                          f"({data.path}) is {data.aspect}: only a square snapshot transfers to a rectangle")
    if (snap.resolution, snap.num_channels) != (data.resolution, data.channels):
        raise ConfigError(
            f"{snap.path} holds {snap.resolution}² networks with {snap.num_channels} channel(s) but "
            f"dataset {cfg.dataset.name} ({data.path}) trains {data.resolution}² images with "
            f"{data.channels}: use a dataset of the snapshot's size (dataset.resolution can only lower "
            "the stored one)")
    model, lines = adopt_architecture(cfg.model, snap.model, str(snap.path), explicit)
    transfer = cfg.transfer
    if not resuming and snap.lod > 0 and not transfer.resume_kimg and "transfer.resume_kimg" not in explicit:
        kimg = kimg_at_lod(snap.lod, cfg.schedule, data.resolution)
        reached = training_schedule(int(round(kimg * 1000)), cfg.schedule, cfg.gpus, data.resolution).lod
        if abs(reached - snap.lod) > 1e-6:
            log.warning("%s was saved at lod %.3f, which this schedule never reaches (it starts at lod %.3f)",
                        snap.path, snap.lod, reached)
        transfer = dataclasses.replace(transfer, resume_kimg=kimg)
        lines.append(f"transfer.resume_kimg={kimg:g}: {snap.path} was saved while growing (lod "
                     f"{snap.lod:.3f}), where this schedule reaches it (set transfer.resume_kimg to start "
                     "elsewhere)")
    schedule = cfg.schedule
    if schedule.G_smoothing_rampup is not None and "schedule.G_smoothing_rampup" not in explicit:
        schedule = dataclasses.replace(schedule, G_smoothing_rampup=None)
        lines.append(f"schedule.G_smoothing_rampup=null: Gs starts from {snap.path}'s trained weights, so "
                     "its half-life does not ramp up (as the original's resume; set it to keep the ramp-up)")
    for line in lines:
        log.info("%s", line)
    return dataclasses.replace(cfg, model=model, transfer=transfer, schedule=schedule) if lines else cfg


def fresh_layers(net: str, names: list[str], source: Path) -> str:
    """What a transfer from a square snapshot left fresh in one network, in words."""
    maps = [n for n in names if n.endswith("/noise")]
    layers = [n for n in names if n not in maps]
    kept = ", ".join(layers) if layers else "no trained layer"
    noise = f" and {len(maps)} fixed noise map{'s' if len(maps) != 1 else ''}" if maps else ""
    return f"{net} starts {kept}{noise} fresh (square in {source}); every other layer transferred"


def _restore(checkpoint: TrainCheckpoint, where: Path, model: object) -> str:
    """Restore a checkpoint; one that does not fit names the model overrides its run's config implies."""
    try:
        return checkpoint.restore(where)
    except CheckpointError:
        run_config = (where if where.is_dir() else where.parent).parent / "config.yaml"
        if run_config.is_file():
            try:
                recorded = OmegaConf.to_container(OmegaConf.load(run_config).model)
                implied = implied_overrides(model, model_config(model.ARCH, recorded))
            except (ConfigError, OmegaConfBaseException):  # another architecture's config
                implied = f"the model recorded in {run_config}"
            if implied:
                raise ConfigError(f"checkpoint {where} was trained with another architecture: resume with "
                                  f"{implied}") from None
        raise


def make_tracker(cfg: TrainConfig, run_dir: Path, state: TrainState, chief: bool) -> Tracker:
    """metrics.jsonl and wandb (continuing a resumed state's run id) on the chief; nothing elsewhere."""
    if not chief:
        return MultiTracker([])
    trackers: list[Tracker] = [JsonlTracker(run_dir / "metrics.jsonl")]
    lg = cfg.logger
    if lg.mode != WandbMode.disabled:
        wb = WandbTracker(
            run_dir, mode=lg.mode.value, project=lg.project, entity=lg.entity,
            name=f"{cfg.name}/{run_dir.name}", group=lg.group or cfg.name, tags=list(lg.tags),
            config=OmegaConf.to_container(OmegaConf.structured(cfg), enum_to_str=True),
            run_id=state.wandb_id or None,
        )
        state.wandb_id = wb.run_id
        trackers.append(wb)
    return MultiTracker(trackers)


def build_run(cfg: TrainConfig, run_dir: Path, workers: WorkerGroup | None = None,
              explicit: Collection[str] = (), resume_from: Path | None = None) -> TrainingRun:
    """`workers` comes from `connect` when the entry point must agree on the run dir before writing to it;
    without it the strategy is made here. `explicit`: the keys set on the command line, which a snapshot the
    run continues must not contradict. `resume_from`: the checkpoint or snapshot the run continues, as
    `run.training_config` found it (else found here from `cfg.resume`)."""
    run_dir = Path(run_dir)
    cfg = resolve_gpus(cfg)  # gpus=auto, unless the entry point decided it before connecting
    workers = workers or connect(cfg)  # before any other TF op
    warn_without_gpus(cfg)
    check_replicas(cfg, workers)
    data = resolve_dataset(cfg, workers)
    target = _agreed_target(workers, resume_target(cfg) if resume_from is None else resume_from)
    if target is None:
        source = load_snapshot(cfg.transfer.source) if cfg.transfer.source else None
    else:
        source = load_snapshot(target) if target.suffix == ".npz" else None
    if source is not None:
        cfg = adopt_snapshot(cfg, source, data, explicit, resuming=target is not None)
    if target is not None:  # the record says what the run continues
        cfg = dataclasses.replace(cfg, resume=dataclasses.replace(cfg.resume, path=str(target)))
    labels = run_labels(cfg.model, data.labels, data.path)
    check_per_tag(cfg.metrics, labels is not None)  # at start-up, not at the first metrics tick
    fresh_labels = _check_continued_labels(labels, source, target)
    c_dim = 0 if labels is None else labels.dim
    label_vectors = read_labels(data.path) if labels is not None else None
    tf.random.set_seed(cfg.seed)
    with network_scope(workers.strategy):
        G = build_generator(cfg.model, data.resolution, data.channels, aspect=data.aspect, c_dim=c_dim)
        D = build_discriminator(cfg.model, data.resolution, data.channels, aspect=data.aspect, c_dim=c_dim)
        Gs = build_generator(cfg.model, data.resolution, data.channels, aspect=data.aspect, c_dim=c_dim)
    extra = {} if label_vectors is None else {"labels": label_vectors}
    steps = architecture(cfg.model).steps(
        G, D, Gs, cfg.model, cfg.seed, accumulate=cfg.schedule.accumulate,
        accumulate_dict=cfg.gpus.accumulate_dict, strategy=workers.strategy,
        worker=(workers.index, workers.count), augment=cfg.augment, freeze_d=cfg.transfer.freeze_d, **extra)
    steps.update_gs(tf.constant(0.0))
    latents = np.random.RandomState(cfg.grid.seed).randn(cfg.grid.width * cfg.grid.height,
                                                         cfg.model.latent_size)
    grid_z = tf.Variable(latents.astype(np.float32), trainable=False)
    start = int(round(cfg.transfer.resume_kimg * 1000))
    state = TrainState(nimg=start, data_start_nimg=start, tick_start_nimg=start)
    checkpoint = TrainCheckpoint(run_dir / "checkpoints", state, cfg.run.keep_checkpoints, workers.is_chief,
                                 G=G, D=D, Gs=Gs, grid_z=grid_z, **steps.checkpoint_objects())
    if source is not None:
        for name, net in (("G", G), ("D", D), ("Gs", Gs)):
            if fresh_labels:
                build = build_discriminator if name == "D" else build_generator
                plain = shapes_by_path(build(cfg.model, data.resolution, data.channels,
                                             aspect=parse_aspect(source.aspect)))
                fresh = transfer_weights(net, source.subset(name), f"{source.path} ({name})", plain)
                log.info("transfer: %s starts fresh where the snapshot (unconditional, %s) has no weights of "
                         "its shape: %s", name, source.aspect, ", ".join(fresh))
            elif source.aspect == str(data.aspect):
                assign_weights(net, source.subset(name), f"{source.path} ({name})")
            else:
                fresh = assign_shared_weights(net, source.subset(name), f"{source.path} ({name})")
                log.info("transfer to %s: %s", data.aspect, fresh_layers(name, fresh, source.path))
        if target is None:
            log.info("transfer: weights from %s, schedule starts at %.1f kimg", source.path,
                     cfg.transfer.resume_kimg)
        else:
            state.nimg = int(round(source.kimg * 1000))
            state.restart_streams()
            log.info("resumed networks from snapshot %s at %.1f kimg (fresh optimizer state)", source.path,
                     source.kimg)
    elif target is not None:
        prefix = _restore(checkpoint, target, cfg.model)
        log.info("resumed from %s at %.1f kimg, tick %d", prefix, state.kimg, state.tick)
    tracker = make_tracker(cfg, run_dir, state, workers.is_chief)
    resumed = target is not None and source is None
    grid_c = None
    if labels is not None:
        grid_c = grid_labels(label_vectors, cfg.grid.width * cfg.grid.height, cfg.grid.width)
        if workers.is_chief:
            write_run_labels(run_dir, labels)
        log.info("conditional on %d labels of %s (%s); fakes' labels are drawn from its %d images' labels",
                 labels.dim, data.path, shorten(labels.names), len(label_vectors))
    return TrainingRun(cfg, run_dir, workers, data, G, D, Gs, steps, grid_z, state, checkpoint, tracker,
                       source, labels, grid_c, resumed, earlier_outputs(target) if resumed else [])


def _check_continued_labels(labels: LabelSpace | None, source: Snapshot | None, target: Path | None) -> bool:
    """What a run continues must have been trained on its vocabulary (one-line ConfigErrors otherwise);
    returns whether a conditional run transfers from an unconditional snapshot (its label weights then start
    fresh)."""
    if source is None:
        if target is not None:
            same_vocabulary(checkpoint_labels(target), labels, f"checkpoint {target}")
        return False
    if source.labels is not None and labels is None:
        raise ConfigError(f"{source.path} is conditional on {source.c_dim} labels: continue it with "
                          "model.conditional=true on a dataset labelled with its vocabulary")
    same_vocabulary(source.labels, labels, str(source.path))
    fresh = source.labels is None and labels is not None
    if fresh and target is not None:
        raise ConfigError(f"{source.path} is unconditional: resume it with model.conditional=false, or "
                          "transfer from it (transfer.source=…) to train a conditional model")
    return fresh
