"""Sampling tasks on a snapshot: `python sample.py name=demo [task=figures|video|rank|invert|edit]`."""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from stylegan_exp.run import start_sampling
from stylegan_exp.schemas import register_configs

register_configs()


@hydra.main(config_path="conf", config_name="sample", version_base="1.3")
def main(cfg: DictConfig) -> None:
    start_sampling(cfg, HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    main()
