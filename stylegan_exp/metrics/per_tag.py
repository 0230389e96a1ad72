"""Per-tag FID of a conditional generator: for each tag of the dataset's vocabulary that enough images have,
FID between reals having it and fakes whose labels are drawn from the label vectors of the images having it.

A tag's reals are the first min(its count, num_images) images having it in the same seeded shuffle as the
other metrics' reals; their Inception features are cached per tag beside the other features.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from stylegan_exp.aspect import parse_aspect
from stylegan_exp.config import MetricsConfig
from stylegan_exp.data.reader import load_info, make_dataset
from stylegan_exp.metrics import MetricError
from stylegan_exp.metrics import features as cache
from stylegan_exp.metrics import networks as nets
from stylegan_exp.metrics.fid import fid
from stylegan_exp.progress import progress_bar

log = logging.getLogger(__name__)

_SHUFFLE_BYTES = 2**30  # as evaluate's reals: bound on the decoded images held by the shuffle buffer
Fakes = Callable[[int, np.ndarray], Iterator[np.ndarray]]  # (count, label vectors) → batches of fakes


def check_per_tag(cfg: MetricsConfig, conditional: bool) -> None:
    """A one-line MetricError when `metrics.per_tag=true` cannot be measured; nothing when it is off."""
    if not cfg.per_tag:
        return
    if "fid" not in cfg.kinds:
        raise MetricError(f"metrics.per_tag=true adds per-tag FID: add fid to metrics.kinds={cfg.kinds}")
    if cfg.per_tag_min_images < 2:
        raise MetricError(f"metrics.per_tag_min_images={cfg.per_tag_min_images}: FID needs at least 2 images")
    if not conditional:
        raise MetricError("metrics.per_tag=true needs a conditional generator (each tag's fakes are made "
                          "from its labels); this one is unconditional")


def tag_counts(labels: np.ndarray, names: list[str], min_images: int,
               num_images: int) -> tuple[dict[str, int], dict[str, int]]:
    """(tag → how many of its images to use, for the tags at least `min_images` images have, at most
    `num_images`; tag → its image count, for the others). A label value above 0.5 means the image has it."""
    has = np.asarray(labels) > 0.5
    counts = {name: int(has[:, i].sum()) for i, name in enumerate(names)}
    used = {name: min(n, num_images) for name, n in counts.items() if n >= min_images}
    return used, {name: n for name, n in counts.items() if n < min_images}


def tag_real_features(data_dir: Path, resolution: int, quotas: dict[str, int], names: list[str],
                      extract: nets.FeatureFn, batch_size: int, seed: int) -> dict[str, np.ndarray]:
    """Each tag's first `quotas[tag]` reals' features in the seeded shuffle, in one pass that extracts an
    image's features once however many tags it has, and stops when every quota is met."""
    info = load_info(data_dir)
    height, width = parse_aspect(info.aspect).shape(resolution)
    buffer = max(1, min(info.count, _SHUFFLE_BYTES // (height * width * info.channels)))
    ds = make_dataset(data_dir, resolution, batch_size, seed=seed, shuffle_buffer=buffer, cache=False,
                      labels=True)  # repeats: the first `count` images are each image once
    columns = {tag: names.index(tag) for tag in quotas}
    out: dict[str, list[np.ndarray]] = {tag: [] for tag in quotas}
    left, seen = dict(quotas), 0
    with progress_bar(total=info.count, desc="reals per tag", unit="img", leave=False) as bar:
        for x, c in ds:
            x, c = x.numpy()[: info.count - seen], c.numpy()[: info.count - seen]
            take = {}
            for tag, col in columns.items():
                rows = np.flatnonzero(c[:, col] > 0.5)[: left[tag]]
                take[tag] = rows
                left[tag] -= len(rows)
            needed = np.unique(np.concatenate([np.zeros(0, int), *take.values()]))
            if len(needed):
                feats = extract(np.asarray(x[needed], np.float32))
                for tag, rows in take.items():
                    out[tag].append(feats[np.searchsorted(needed, rows)])
            seen += len(x)
            bar.update(len(x))
            if seen >= info.count or not any(left.values()):
                break
    return {tag: np.concatenate(chunks) for tag, chunks in out.items()}


def per_tag_fid(data_dir: Path, resolution: int, cfg: MetricsConfig, labels: np.ndarray, names: list[str],
                inception: tuple[str, nets.FeatureFn], cache_dir: Path, fakes: Fakes) -> dict[str, float]:
    """`metrics/fid_<tag>` for every tag with at least `cfg.per_tag_min_images` images (the others named in
    one log line); `fakes(count, label vectors)` makes a tag's fakes from its reals' labels."""
    quotas, skipped = tag_counts(labels, names, cfg.per_tag_min_images, cfg.num_images)
    if skipped:
        log.info("per-tag FID skips %d tag(s) with fewer than metrics.per_tag_min_images=%d images: %s",
                 len(skipped), cfg.per_tag_min_images, ", ".join(f"{t} ({n})" for t, n in skipped.items()))
    if not quotas:
        return {}
    network, extract = inception
    folder = cache.dataset_folder(cache_dir, data_dir)
    paths = {tag: cache.features_path(folder, f"{network}-tag{names.index(tag)}", resolution, n, cfg.seed)
             for tag, n in quotas.items()}
    reals = cache.cached_features(paths, lambda missing: tag_real_features(
        data_dir, resolution, {t: quotas[t] for t in missing}, names, extract, cfg.minibatch, cfg.seed))
    has = np.asarray(labels) > 0.5
    results = {}
    for tag, n in quotas.items():
        with progress_bar(total=n, desc=f"fakes {tag}", unit="img", leave=False) as bar:
            chunks = []
            for batch in fakes(n, labels[has[:, names.index(tag)]]):
                chunks.append(extract(np.asarray(batch, np.float32)))
                bar.update(len(batch))
        results[f"metrics/fid_{tag}"] = fid(reals[tag], np.concatenate(chunks))
    log.info("per-tag FID on %s", ", ".join(f"{t} ({n} images)" for t, n in quotas.items()))
    return results
