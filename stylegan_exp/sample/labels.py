"""Sampling a conditional snapshot by tags: `tags=[blonde_hair,smile]` → a label vector over the snapshot's
vocabulary, and truncation toward the average w of that label (the mean of mapping(z, c) over many z), which
keeps a truncated sample of the label asked for (stylegan2-ada truncates toward its one global w_avg)."""

from __future__ import annotations

import logging

import numpy as np

from stylegan_exp.data.dataset_format import DatasetError, LabelSpace
from stylegan_exp.nets.compiled import compiled, run_batched
from stylegan_exp.nets.generator import Generator
from stylegan_exp.snapshot import Snapshot

log = logging.getLogger(__name__)

CENTER_SAMPLES = 4096  # latents averaged for a label's average w
CENTER_SEED = 123


class LabelError(DatasetError):
    """Tags a snapshot cannot be sampled with; the message is one line."""


def label_vector(space: LabelSpace, tags: list[str]) -> np.ndarray:
    """The multi-hot vector of `tags`; an unknown tag lists the vocabulary, two values of one categorical
    group are refused."""
    c = np.zeros([space.dim], np.float32)
    for tag in tags:
        try:
            c[space.index(tag)] = 1.0
        except DatasetError as exc:
            raise LabelError(str(exc)) from None
    for group, members in space.groups.items():
        chosen = [t for t in members if t in tags]
        if len(chosen) > 1:
            raise LabelError(f"tags {', '.join(chosen)} are values of the one group {group!r}: pick one")
    return c


def snapshot_labels(snap: Snapshot, tags: list[str]) -> np.ndarray | None:
    """The label vector a task samples with: None for an unconditional snapshot (tags refused), the tags'
    vector for a conditional one (which needs tags: its labels are never silently all zero)."""
    if snap.labels is None:
        if tags:
            raise LabelError(f"tags={list(tags)} needs a conditional snapshot; {snap.path} is unconditional")
        return None
    if not tags:
        raise LabelError(f"{snap.path} is conditional: give tags=[…] from its vocabulary: "
                         f"{', '.join(snap.labels.names)}")
    return label_vector(snap.labels, list(tags))


def group_rows(space: LabelSpace, group: str | None, tags: list[str]) -> tuple[list[str], np.ndarray]:
    """One label vector per value of `group` (default: the first group; without groups every tag alone),
    each with the other `tags` too: the rows of the labels figure, and their names."""
    if group is None:
        values = next(iter(space.groups.values())) if space.groups else list(space.names)
    elif group in space.groups:
        values = space.groups[group]
    else:
        known = ", ".join(space.groups) or "none"
        raise LabelError(f"unknown tag group {group!r}; this snapshot's groups: {known}")
    others = [t for t in tags if t not in values]
    return values, np.stack([label_vector(space, [value, *others]) for value in values])


def _map(Gs: Generator, zc: np.ndarray) -> np.ndarray:
    return Gs.map(zc[:, : Gs.latent_size], zc[:, Gs.latent_size :])


def map_labelled(Gs: Generator, z: np.ndarray, labels: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Untruncated w [N, num_layers, dlatent] of latents [N, latent] with labels [N, c_dim]."""
    rows = np.concatenate([z, labels], axis=1).astype(np.float32)
    return run_batched(compiled(Gs, _map), rows, batch_size)


def center_latents(latent_size: int, samples: int = CENTER_SAMPLES) -> np.ndarray:
    """The fixed latents [samples, latent] a label's average w is taken over (an export carries them)."""
    return np.random.RandomState(CENTER_SEED).randn(samples, latent_size).astype(np.float32)


def label_center(Gs: Generator, label: np.ndarray, samples: int = CENTER_SAMPLES) -> np.ndarray:
    """The average w [dlatent] of one label: mapping(z, label) averaged over `samples` fixed latents."""
    z = center_latents(Gs.latent_size, samples)
    w = map_labelled(Gs, z, np.repeat(label[None], samples, axis=0), batch_size=512)
    return w[:, 0].mean(axis=0)


def truncate_toward(w: np.ndarray, center: np.ndarray, psi: float, cutoff: int | None) -> np.ndarray:
    """w' = center + psi (w - center) on the style layers below `cutoff` (every layer when None)."""
    layers = w.shape[-2] if cutoff is None else max(0, min(cutoff, w.shape[-2]))
    out = np.array(w, copy=True)
    out[..., :layers, :] = center + psi * (w[..., :layers, :] - center)
    return out


def labelled_dlatents(Gs: Generator, z: np.ndarray, labels: np.ndarray, *, psi: float, cutoff: int | None,
                      batch_size: int = 16) -> np.ndarray:
    """w of latents with their labels ([N, c_dim], or one [c_dim] for all), truncated toward each label's
    average w."""
    labels = np.broadcast_to(np.asarray(labels, np.float32), (len(z), Gs.c_dim))
    w = map_labelled(Gs, z, labels, batch_size)
    if psi == 1.0:
        return w
    distinct, which = np.unique(labels, axis=0, return_inverse=True)
    centers = np.stack([label_center(Gs, c) for c in distinct])
    return truncate_toward(w, centers[np.ravel(which)][:, None, :], psi, cutoff)


def describe_labels(space: LabelSpace, labels: np.ndarray, psi: float) -> str:
    """`tags blonde_hair, smile; truncation toward their average w (…)` for the log."""
    tags = ", ".join(n for n, v in zip(space.names, labels, strict=True) if v)
    toward = (f"truncation toward the average w of these labels (mean of mapping(z, c) over {CENTER_SAMPLES} "
              "latents)" if psi != 1.0 else "no truncation")
    return f"tags {tags}; {toward}"
