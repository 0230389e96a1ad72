"""Prepare a training dataset from images: `python prepare.py source=DIR stages=[crop,clean,pack]`,
`prepare/resize=r256`, `crop.min_face_size=128` … (see conf/prepare.yaml)."""

import sys

import hydra
from omegaconf import DictConfig

from stylegan_exp.data.manifest import StageError, user_error
from stylegan_exp.data.prepare import run_prepare
from stylegan_exp.data.prepare_config import register_prepare_configs

register_prepare_configs()


@hydra.main(config_path="conf", config_name="prepare", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        run_prepare(cfg)
    except (StageError, OSError) as exc:
        sys.exit(f"error: {user_error(exc)}")


if __name__ == "__main__":
    main()
