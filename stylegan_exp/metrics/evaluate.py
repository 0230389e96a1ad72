"""One entry point for the training loop and sample.py: a generator's metrics against its dataset.

Results are keyed by the papers' names, with the number of images actually used in them:
`metrics/fid50k`, `metrics/kid50k` (+ `_std`), `metrics/pr50k3_precision` / `_recall`, `metrics/ppl_wend`,
and `metrics/swd_<res>` / `metrics/swd_mean` — `fid1k` on 1,000 images, `fid48` and `pr48_3` on 48 — and, with
`metrics.per_tag`, `metrics/fid_<tag>` per tag of a conditional generator's vocabulary (see per_tag).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from stylegan_exp.aspect import parse_aspect
from stylegan_exp.config import MetricsConfig
from stylegan_exp.data.reader import load_info, make_dataset, read_labels
from stylegan_exp.metrics import MetricError
from stylegan_exp.metrics import features as cache
from stylegan_exp.metrics import networks as nets
from stylegan_exp.metrics.fid import fid
from stylegan_exp.metrics.kid import kid
from stylegan_exp.metrics.per_tag import check_per_tag, per_tag_fid
from stylegan_exp.metrics.ppl import DistanceFn, lpips_distance, min_size, perceptual_path_length
from stylegan_exp.metrics.pr import precision_recall
from stylegan_exp.metrics.swd import SWD
from stylegan_exp.nets.compiled import compiled, run_batched
from stylegan_exp.nets.generator import Generator
from stylegan_exp.progress import progress_bar

log = logging.getLogger(__name__)

METRICS = ("fid", "kid", "pr", "ppl", "swd")
_SHUFFLE_BYTES = 2**30  # bound on the decoded images held by the shuffle buffer that picks the reals


@dataclass
class Networks:
    """The feature networks as (cache name, feature function), and PPL's perceptual distance."""

    inception: tuple[str, nets.FeatureFn] | None = None
    vgg: tuple[str, nets.FeatureFn] | None = None
    perceptual: DistanceFn | None = None


def load_networks(cfg: MetricsConfig, cache_dir: Path) -> Networks:
    """The networks `cfg.kinds` needs, downloaded first if needed (MetricError when they cannot be)."""
    names = set(cfg.kinds)
    inception_users = "/".join(m.upper() for m in ("fid", "kid") if m in names)
    return Networks(
        inception=nets.inception_features(cfg.fid, cache_dir, inception_users) if inception_users else None,
        vgg=nets.vgg_fc2_features(cfg.pr, cache_dir) if "pr" in names else None,
        perceptual=lpips_distance(nets.vgg_lpips_taps(cfg.ppl, cache_dir)) if "ppl" in names else None,
    )


def count_tag(n: int) -> str:
    """The papers' image count in a metric name: 50000 → "50k", 1000 → "1k", 1024 → "1024"."""
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def real_batches(data_dir: Path, resolution: int, num_images: int, batch_size: int,
                 seed: int = 0) -> Iterator[np.ndarray]:
    """The first `num_images` reals of a seeded shuffle (the same subset every time), NHWC in [-1, 1]."""
    info = load_info(data_dir)
    height, width = parse_aspect(info.aspect).shape(resolution)
    buffer = max(1, min(info.count, _SHUFFLE_BYTES // (height * width * info.channels)))
    ds = make_dataset(data_dir, resolution, batch_size, seed=seed, shuffle_buffer=buffer, cache=False)
    done = 0
    for batch in ds:
        take = min(batch_size, num_images - done)
        yield batch.numpy()[:take]
        done += take
        if done >= num_images:
            return


def _untruncated(Gs: Generator, z: tf.Tensor) -> tf.Tensor:
    return Gs(z)


def _untruncated_conditional(Gs: Generator, zc: tf.Tensor) -> tf.Tensor:
    return Gs(zc[:, : Gs.latent_size], c=zc[:, Gs.latent_size :])


def fake_batches(Gs: Generator, num_images: int, batch_size: int, seed: int = 0,
                 labels: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Full-resolution, untruncated samples from fixed latents, NHWC clipped to [-1, 1]; Gs runs compiled,
    the last batch padded to the same shape. A conditional Gs needs `labels` (the dataset's label vectors):
    each fake's label is drawn from them, so the fakes follow the real label distribution."""
    if Gs.c_dim and labels is None:
        raise MetricError("a conditional generator's metrics need the dataset's labels to draw fakes' labels")
    rng = np.random.RandomState(seed)
    label_rng = np.random.RandomState(seed + 1)
    generate = compiled(Gs, _untruncated_conditional if Gs.c_dim else _untruncated)
    for i in range(0, num_images, batch_size):
        z = rng.randn(min(batch_size, num_images - i), Gs.latent_size).astype(np.float32)
        if Gs.c_dim:
            z = np.concatenate([z, labels[label_rng.randint(len(labels), size=len(z))]], axis=1)
        yield np.clip(run_batched(generate, z.astype(np.float32), batch_size), -1.0, 1.0)


def feature_pass(batches: Iterable[np.ndarray], extractors: dict[str, nets.FeatureFn], total: int,
                 desc: str) -> dict[str, np.ndarray]:
    """Every extractor's features of the same batches, read once, with a progress bar."""
    out: dict[str, list[np.ndarray]] = {name: [] for name in extractors}
    with progress_bar(total=total, desc=desc, unit="img", leave=False) as bar:
        for batch in batches:
            for name, extract in extractors.items():
                out[name].append(extract(np.asarray(batch, np.float32)))
            bar.update(len(batch))
    return {name: np.concatenate(chunks) for name, chunks in out.items()}


def _fake_labels(Gs: Generator, data_dir: Path, cfg: MetricsConfig) -> np.ndarray | None:
    """A conditional Gs's fakes draw their labels from the dataset's (which must have as many); None for an
    unconditional one. PPL has no label input yet: refused for a conditional Gs."""
    if not Gs.c_dim:
        return None
    if "ppl" in cfg.kinds:
        raise MetricError("ppl is not available for a conditional generator yet; drop it from metrics.kinds")
    labels = read_labels(data_dir)
    if labels.shape[1] != Gs.c_dim:
        raise MetricError(f"{data_dir} has {labels.shape[1]} labels but the generator is conditional on "
                          f"{Gs.c_dim}: measure it against the dataset it was trained on")
    return labels


def evaluate(Gs: Generator, data_dir: Path, resolution: int, cfg: MetricsConfig, cache_dir: Path, *,
             networks: Networks | None = None) -> dict[str, float]:
    """The metrics in `cfg.kinds`, keyed as the module docstring says.

    Reals and fakes are equally many: num_images, or the dataset size if smaller. `networks` replaces
    the downloaded networks (tests). Raises MetricError, before any work, when a network cannot be had.
    """
    unknown = sorted(set(cfg.kinds) - set(METRICS))
    if unknown:
        raise MetricError(f"unknown metrics {unknown} in metrics.kinds; known: {list(METRICS)}")
    if cfg.per_tag:
        check_per_tag(cfg, bool(Gs.c_dim))
    if not cfg.kinds:
        return {}
    if "ppl" in cfg.kinds and networks is None and resolution < min_size(cfg.ppl.crop):
        raise MetricError(f"PPL's VGG16 needs images of at least {min_size(cfg.ppl.crop)}px with "
                          f"ppl.crop={cfg.ppl.crop}, got {resolution}px")
    data_dir, cache_dir = Path(data_dir), Path(cache_dir).expanduser()
    info = load_info(data_dir)
    count = info.count
    n = min(cfg.num_images, count)
    need = cfg.pr.k + 1 if "pr" in cfg.kinds else 2
    if n < need:
        raise MetricError(f"metrics {'/'.join(cfg.kinds)} need at least {need} images; the dataset and "
                          f"metrics.num_images give {n}")
    if n < cfg.num_images:
        log.warning("metrics on %d images: the dataset %s has fewer than metrics.num_images=%d",
                    n, data_dir, cfg.num_images)
    networks = networks or load_networks(cfg, cache_dir)  # before any other work: missing weights fail fast
    if info.aspect != str(Gs.aspect):
        raise MetricError(f"{data_dir} holds {info.aspect} images but the generator makes {Gs.aspect} ones "
                          "(width:height): metrics compare images of one aspect")
    labels = _fake_labels(Gs, data_dir, cfg)
    start = time.time()
    results: dict[str, float] = {}
    if "swd" in cfg.kinds:
        swd = SWD(resolution, cfg.swd, cfg.seed)
        real = swd.descriptors(real_batches(data_dir, resolution, n, cfg.minibatch, cfg.seed))
        fake = swd.descriptors(fake_batches(Gs, n, cfg.minibatch, cfg.seed, labels))
        results.update({f"metrics/{k}": v for k, v in swd.distance(real, fake).items()})
    extractors = dict(([networks.inception] if {"fid", "kid"} & set(cfg.kinds) else [])
                      + ([networks.vgg] if "pr" in cfg.kinds else []))
    if extractors:
        folder = cache.dataset_folder(cache_dir, data_dir)
        paths = {name: cache.features_path(folder, name, resolution, n, cfg.seed) for name in extractors}
        reals = cache.cached_features(paths, lambda missing: feature_pass(
            real_batches(data_dir, resolution, n, cfg.minibatch, cfg.seed),
            {name: extractors[name] for name in missing}, n, "reals"))
        fakes = feature_pass(fake_batches(Gs, n, cfg.minibatch, cfg.seed, labels), extractors, n, "fakes")
        tag = count_tag(n)
        if "fid" in cfg.kinds:
            results[f"metrics/fid{tag}"] = fid(reals[networks.inception[0]], fakes[networks.inception[0]])
        if cfg.per_tag:
            def make_fakes(count: int, c: np.ndarray) -> Iterator[np.ndarray]:
                return fake_batches(Gs, count, cfg.minibatch, cfg.seed, c)

            results.update(per_tag_fid(data_dir, resolution, cfg, labels, info.labels.names,
                                       networks.inception, cache_dir, make_fakes))
        if "kid" in cfg.kinds:
            mean, std = kid(reals[networks.inception[0]], fakes[networks.inception[0]], cfg.kid.num_subsets,
                            cfg.kid.max_subset_size, np.random.RandomState(cfg.seed))
            results.update({f"metrics/kid{tag}": mean, f"metrics/kid{tag}_std": std})
        if "pr" in cfg.kinds:
            precision, recall = precision_recall(reals[networks.vgg[0]], fakes[networks.vgg[0]], cfg.pr.k,
                                                 cfg.pr.row_batch_size)
            name = f"pr{tag}{'' if tag.endswith('k') else '_'}{cfg.pr.k}"  # pr50k3, pr48_3
            results.update({f"metrics/{name}_precision": precision, f"metrics/{name}_recall": recall})
    if "ppl" in cfg.kinds:
        results[f"metrics/ppl_{cfg.ppl.space}{cfg.ppl.sampling}"] = perceptual_path_length(
            Gs, networks.perceptual, cfg.ppl, cfg.seed)
    log.info("metrics on %d images in %.1fs: %s", n, time.time() - start,
             "  ".join(f"{k.removeprefix('metrics/')} {v:.4g}" for k, v in results.items()))
    return results
