"""Train a StyleGAN from a composed config: `python train.py +experiment=demo`, `gpus=1gpu`, …"""

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from stylegan_exp.run import start_training
from stylegan_exp.schemas import register_configs
from stylegan_exp.sweep import missing_launcher

register_configs()


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    start_training(cfg, HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    sys.exit(missing_launcher(sys.argv[1:]) or main())
