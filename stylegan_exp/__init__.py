"""stylegan-exp: config-driven StyleGAN experiments on TensorFlow 2."""

from stylegan_exp import tf_quiet

# Before TensorFlow is first imported anywhere (entry points, Hydra plugins, tests): only our own log.
tf_quiet.install()
