"""Networks from a model config: the one place that turns config values into G and D."""

from __future__ import annotations

from typing import Any

from stylegan_exp.nets.discriminator import Discriminator
from stylegan_exp.nets.generator import Generator, NetworkSize


def _get(model: Any, key: str) -> Any:
    return model[key] if isinstance(model, dict) else getattr(model, key)


def network_size(model: Any, resolution: int, num_channels: int = 3) -> NetworkSize:
    return NetworkSize(resolution=resolution, num_channels=num_channels, fmap_base=_get(model, "fmap_base"),
                       fmap_decay=_get(model, "fmap_decay"), fmap_max=_get(model, "fmap_max"))


def build_generator(model: Any, resolution: int, num_channels: int = 3) -> Generator:
    """`model` is a ModelConfig or the dict stored in a snapshot."""
    return Generator(
        network_size(model, resolution, num_channels),
        latent_size=_get(model, "latent_size"),
        dlatent_size=_get(model, "dlatent_size"),
        mapping_layers=_get(model, "mapping_layers"),
        mapping_fmaps=_get(model, "mapping_fmaps"),
        mapping_lrmul=_get(model, "mapping_lrmul"),
        use_noise=_get(model, "use_noise"),
        fused_scale_min_res=_get(model, "fused_scale_min_res"),
    )


def build_discriminator(model: Any, resolution: int, num_channels: int = 3) -> Discriminator:
    return Discriminator(
        network_size(model, resolution, num_channels),
        mbstd_group_size=_get(model, "mbstd_group_size"),
        mbstd_num_features=_get(model, "mbstd_num_features"),
        fused_scale_min_res=_get(model, "fused_scale_min_res"),
    )
