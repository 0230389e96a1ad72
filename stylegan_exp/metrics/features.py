"""The feature cache: one folder per dataset, one file per feature network and real-image subset.

The reals' features only change with the dataset, so every metric reads them from here (FID and KID
share the Inception features, PR has its VGG16 features): a packed dataset with a new dataset.json
(repacked data) gets a new folder.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from stylegan_exp.atomic import atomic_open
from stylegan_exp.data.dataset_format import INFO_FILE


def dataset_folder(cache_dir: Path, data_dir: Path) -> Path:
    """`<cache_dir>/<dataset name>-<hash of its path and dataset.json>`."""
    data_dir = Path(data_dir).resolve()
    info_sha = hashlib.sha256((data_dir / INFO_FILE).read_bytes()).hexdigest()
    key = hashlib.sha256(f"{data_dir}|{info_sha}".encode()).hexdigest()[:16]
    return Path(cache_dir).expanduser() / f"{data_dir.name}-{key}"


def features_path(folder: Path, network: str, resolution: int, num_images: int, seed: int) -> Path:
    return folder / f"{network}-{resolution}px-{num_images}-seed{seed}.npy"


def cached_features(paths: dict[str, Path],
                    compute: Callable[[list[str]], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The features of every network in `paths`: read when cached, else computed together in one
    `compute(missing names)` pass over the reals and written atomically."""
    missing = [name for name, path in paths.items() if not path.is_file()]
    fresh = compute(missing) if missing else {}
    for name, features in fresh.items():
        with atomic_open(paths[name]) as f:
            np.save(f, np.asarray(features, np.float32))
    return {name: fresh[name] if name in fresh else np.load(path) for name, path in paths.items()}
