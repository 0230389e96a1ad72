"""What the house needs to know of one model: everything is in its package, named here."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from stylegan_exp.config import ModelConfig
from stylegan_exp.nets.generator import Generator
from stylegan_exp.nets.network import Discriminator
from stylegan_exp.steps.base import TrainingSteps


@dataclass(frozen=True)
class Architecture:
    """A model's config schema, networks, training steps and importers of foreign checkpoints.

    An importer is a module of the model's package that converts one foreign format's snapshots of that
    model: `FORMAT` (a `models.FORMATS` name), `KEYS` (what the format says a snapshot is, e.g. the pickled
    Gs build function; the format's most specific key that an importer names wins), `IGNORED` (source names
    that are not weights), and `resolution`, `num_channels`, `lod`, `infer_model`, `tables`; an importer of
    conditional snapshots adds `c_dim` (their label size, 0 for an unconditional one)."""

    config: type[ModelConfig]
    generator: type[Generator]
    discriminator: type[Discriminator]
    steps: type[TrainingSteps]
    importers: tuple[ModuleType, ...] = ()

    @property
    def name(self) -> str:
        return self.config.ARCH
