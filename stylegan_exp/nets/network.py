"""What every generator and discriminator shares: the model config and output size it was built for,
which snapshots, sampling and export read back from the network, and the level of detail it runs at; and
what every discriminator answers (scores, features for inversion, blocks by resolution for Freeze-D)."""

from __future__ import annotations

import math

import tensorflow as tf

from stylegan_exp.aspect import SQUARE, Aspect
from stylegan_exp.config import ModelConfig
from stylegan_exp.nets.labels import LabelMapping, project
from stylegan_exp.resolution import log2_int


class Network(tf.Module):
    """`resolution` is the short side of its images, `aspect` their width:height (stylegan_exp/aspect.py)."""

    def __init__(self, model: ModelConfig, resolution: int, num_channels: int = 3,
                 name: str | None = None, *, aspect: Aspect = SQUARE) -> None:
        super().__init__(name=name)
        self.model = model
        self.resolution, self.num_channels = resolution, num_channels
        self.aspect = aspect
        self.resolution_log2 = log2_int(resolution)
        self._lod = 0.0

    @property
    def lod(self) -> float:
        """Where the network runs unless a caller names a level: a snapshot saved while growing runs as it
        was trained (the original's lod: 0 = every layer)."""
        return self._lod

    @lod.setter
    def lod(self, value: float) -> None:
        top = self.resolution_log2 - 2
        if not 0.0 <= value <= top:
            raise ValueError(f"lod must be in [0, {top}] at {self.resolution}², got {value}")
        self._lod = float(value)

    def level_and_fade(self) -> tuple[int, float]:
        """`lod` as the level the network is traced at (2**level pixels) and the fade of the level below."""
        whole = math.floor(self._lod)
        return self.resolution_log2 - whole, self._lod - whole


class Discriminator(Network):
    """Images → one score each. Each architecture subclasses it in its package; `blocks` lists its blocks by
    resolution, the 4×4 (scoring) block first, which Freeze-D freezes from the top."""

    blocks: list[tf.Module]
    c_dim: int = 0  # label vector size of a conditional D (0: unconditional, no label weights)

    def condition_on(self, c_dim: int) -> int:
        """Make a D conditional on `c_dim` labels (projection, see nets.labels); returns the width of its
        output layer: the cmap features (nf(0), its 4×4 channels, as stylegan2-ada), or 1 if unconditional."""
        self.c_dim = c_dim
        if not c_dim:
            return 1
        cmap_dim = self.model.nf(0)
        self.label_mapping = LabelMapping(self.model, c_dim, cmap_dim)
        return cmap_dim

    def score(self, out: tf.Tensor, c: tf.Tensor | None) -> tf.Tensor:
        """The output layer's [N, width] → one score per image, projected on the labels' cmap if
        conditional."""
        if not self.c_dim:
            return out[:, 0]
        if c is None:
            raise ValueError(f"this discriminator is conditional on {self.c_dim} labels: it needs the label "
                             "vector of every image")
        return project(out, self.label_mapping(c))

    def __call__(self, images: tf.Tensor, level: int | None = None,
                 fade: tf.Tensor | float = 0.0, c: tf.Tensor | None = None) -> tf.Tensor:
        """Scores of images at 2**level (with the lower level's path faded in by `fade`), or of full-size
        images at the network's `lod` when no level is named; `c`: their labels (a conditional D)."""
        raise NotImplementedError

    def features(self, images: tf.Tensor) -> list[tf.Tensor]:
        """Activations after every block above 4×4 for full-size images: what a feature-matching loss
        compares (inversion)."""
        raise NotImplementedError
