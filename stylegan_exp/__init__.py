"""stylegan-exp: config-driven StyleGAN experiments on TensorFlow 2."""

import os

# Before TensorFlow is first imported anywhere in the package: keep its C++ INFO/WARNING chatter out of logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
