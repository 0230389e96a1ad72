"""Hydra's view of the package: every config schema, with each registered architecture's model config."""

from stylegan_exp.config import register_schemas
from stylegan_exp.models import model_schemas


def register_configs() -> None:
    """What the entry points (and tests composing their configs) call before Hydra composes."""
    register_schemas(model_schemas())
