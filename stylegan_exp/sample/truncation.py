"""Which truncation a sampling run uses: the snapshot's own unless the user sets it.

A snapshot's model config carries its architecture's sampling convention — StyleGAN's G_style truncates the
style layers below 8 with ψ 0.7, StyleGAN2's G_main every layer with ψ 0.5 (and an imported pickle's own
static kwargs where it has them). `sample.py` leaves `truncation_psi` and `truncation_cutoff` unset (`???`)
unless given, and they are filled in here from the snapshot before the config is typed and recorded, so every
task and the recorded config.yaml see the values actually used.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from stylegan_exp.config import ModelConfig

KEYS = ("truncation_psi", "truncation_cutoff")
SNAPSHOT = "the snapshot's model config"


def adopt_truncation(cfg: DictConfig, model: ModelConfig) -> DictConfig:
    """A copy of the sample config with each unset truncation key taken from the snapshot's model config."""
    filled = cfg.copy()
    for key in KEYS:
        if OmegaConf.is_missing(cfg, key):
            filled[key] = getattr(model, key)
    return filled


def cutoff_words(cutoff: int | None, num_layers: int) -> str:
    """`8 of 12 style layers`, or `every layer` (None, or a cutoff at or beyond the last layer)."""
    if cutoff is None or cutoff >= num_layers:
        return "every layer"
    return f"{max(cutoff, 0)} of {num_layers} style layers"


def describe_truncation(psi: float, cutoff: int | None, model: ModelConfig, num_layers: int) -> str:
    """`psi=0.5 (the snapshot's model config), cutoff=every layer (set on the command line; …)`: each value
    with where it came from: a value equal to the snapshot's is the snapshot's, any other the user's."""

    def origin(ours: str, theirs: str) -> str:
        return SNAPSHOT if ours == theirs else f"set on the command line; {SNAPSHOT} has {theirs}"

    psi_text, model_psi = f"{psi:g}", f"{model.truncation_psi:g}"
    cut_text = cutoff_words(cutoff, num_layers)
    model_cut = cutoff_words(model.truncation_cutoff, num_layers)
    return (f"psi={psi_text} ({origin(psi_text, model_psi)}), "
            f"cutoff={cut_text} ({origin(cut_text, model_cut)})")
