"""The original StyleGAN (NVlabs/stylegan): G_style + D_basic, grown progressively."""

from stylegan_exp.models.architecture import Architecture
from stylegan_exp.models.stylegan import tf1
from stylegan_exp.models.stylegan.config import StyleGANConfig
from stylegan_exp.models.stylegan.discriminator import StyleGANDiscriminator
from stylegan_exp.models.stylegan.generator import StyleGANGenerator
from stylegan_exp.models.stylegan.training import StyleGANSteps

ARCHITECTURE = Architecture(StyleGANConfig, StyleGANGenerator, StyleGANDiscriminator, StyleGANSteps,
                            importers=(tf1,))
