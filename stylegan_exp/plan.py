"""The memory plan of a training run before it starts: `python -m stylegan_exp.plan <train.py overrides>`
composes the run as train.py would and prints, per resolution, the parameters, activations per image, the
per-device batch and accumulation, and the estimated peak memory; it exits 1 with one line when a resolution
does not fit."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir

from stylegan_exp.gpu_plan import plan_lines
from stylegan_exp.run import USER_ERRORS, training_config
from stylegan_exp.schemas import register_configs

CONF = Path(__file__).resolve().parents[1] / "conf"


def main(overrides: Sequence[str]) -> int:
    register_configs()
    try:
        with initialize_config_dir(str(CONF), version_base="1.3"):
            composed = compose("train", overrides=list(overrides))
            cfg, _ = training_config(composed, compose("train"), overrides)
        lines = plan_lines(cfg)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 1 if lines[-1].startswith("error:") else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
