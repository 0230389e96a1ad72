"""StyleGAN2 (NVlabs/stylegan2) configs E and F: G_main + D_stylegan2 at full resolution, lazy R1 and
path-length regularization; imports StyleGAN2 (`tf1`), stylegan2-ada TensorFlow (`ada_tf`) and
stylegan2-ada-pytorch (`ada_torch`) pickles."""

from stylegan_exp.models.architecture import Architecture
from stylegan_exp.models.stylegan2 import ada_tf, ada_torch, tf1
from stylegan_exp.models.stylegan2.config import StyleGAN2Config
from stylegan_exp.models.stylegan2.discriminator import StyleGAN2Discriminator
from stylegan_exp.models.stylegan2.generator import StyleGAN2Generator
from stylegan_exp.models.stylegan2.training import StyleGAN2Steps

ARCHITECTURE = Architecture(StyleGAN2Config, StyleGAN2Generator, StyleGAN2Discriminator, StyleGAN2Steps,
                            importers=(tf1, ada_tf, ada_torch))
