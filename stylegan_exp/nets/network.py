"""What every generator and discriminator shares: the model config and output size it was built for,
which snapshots, sampling and export read back from the network."""

from __future__ import annotations

import tensorflow as tf

from stylegan_exp.config import ModelConfig
from stylegan_exp.resolution import log2_int


class Network(tf.Module):
    def __init__(self, model: ModelConfig, resolution: int, num_channels: int = 3,
                 name: str | None = None) -> None:
        super().__init__(name=name)
        self.model = model
        self.resolution, self.num_channels = resolution, num_channels
        self.resolution_log2 = log2_int(resolution)
