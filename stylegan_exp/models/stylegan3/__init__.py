"""StyleGAN3 (NVlabs/stylegan3, "Alias-Free Generative Adversarial Networks") configs T and R: the alias-free
generator with stylegan2-ada's residual D, trained with R1 only."""

from stylegan_exp.models.architecture import Architecture
from stylegan_exp.models.stylegan3.config import StyleGAN3Config
from stylegan_exp.models.stylegan3.discriminator import StyleGAN3Discriminator
from stylegan_exp.models.stylegan3.generator import StyleGAN3Generator
from stylegan_exp.models.stylegan3.training import StyleGAN3Steps

ARCHITECTURE = Architecture(StyleGAN3Config, StyleGAN3Generator, StyleGAN3Discriminator, StyleGAN3Steps)
